//! An Icecast mount to feed, parsed from
//! `icecast://USER:PASSWORD@HOST:PORT/MOUNT[?kbps=N&public=0|1&name=..&description=..&genre=..&url=..]`.
//!
//! The user defaults to `source` and the port to 8000, as in Icecast's own
//! defaults. The password and the text values may be percent-encoded (`%2C` for a
//! comma, which separates mounts in `AURALIS_ICECAST`). Each error names what is
//! wrong, never the password.

use std::fmt;

/// Icecast's default port.
const DEFAULT_PORT: u16 = 8000;

/// One mount the bridge feeds as an Icecast source.
#[derive(Clone, PartialEq, Eq)]
pub struct IcecastTarget {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The mount, starting with `/`.
    pub mount: String,
    /// The source user (Icecast 2.4 takes `source`).
    pub user: String,
    /// The source password.
    pub password: String,
    /// The bitrate asked for with `?kbps=`, if any.
    pub kbps: Option<u32>,
    /// Whether Icecast may list the stream in a public directory (`ice-public`).
    pub public: bool,
    /// `ice-name`, when given; otherwise the piece's name.
    pub name: Option<String>,
    /// `ice-description`, when given; otherwise the piece's key, mode and tempo.
    pub description: Option<String>,
    /// `ice-genre`, when given; otherwise `Ambient`.
    pub genre: Option<String>,
    /// `ice-url`, when given; otherwise this bridge's repository.
    pub url: Option<String>,
}

/// Shows the target without its password, for logs, `/health` and errors.
impl fmt::Debug for IcecastTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for IcecastTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "icecast://{}@{}{}",
            self.user,
            self.authority(),
            self.mount
        )
    }
}

impl IcecastTarget {
    /// `HOST:PORT`, with brackets around an IPv6 address.
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Parses one `icecast://` URL.
    ///
    /// # Errors
    /// A sentence naming what is wrong (the URL is quoted without its password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let Some(rest) = url.strip_prefix("icecast://") else {
            return Err(format!(
                "{:?} is not an icecast:// URL (expected icecast://source:PASSWORD@HOST:PORT/MOUNT)",
                redact(url)
            ));
        };
        let shown = redact(url);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some((userinfo, location)) = rest.rsplit_once('@') else {
            return Err(format!(
                "{shown:?} has no credentials: give them as icecast://source:PASSWORD@HOST:PORT/MOUNT"
            ));
        };
        let (user, password) = userinfo.split_once(':').unwrap_or(("source", userinfo));
        let user = if user.is_empty() { "source" } else { user };
        let password = decode(password).map_err(|e| format!("{shown:?}: the password {e}"))?;
        if password.is_empty() {
            return Err(format!("{shown:?} has an empty password"));
        }
        let (authority, mount) = location
            .find('/')
            .map_or((location, ""), |i| location.split_at(i));
        if mount.len() < 2 {
            return Err(format!(
                "{shown:?} names no mount: add one after the port, e.g. /live.opus"
            ));
        }
        if mount
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        {
            return Err(format!(
                "{shown:?}: the mount {mount:?} has spaces or control characters"
            ));
        }
        let (host, port) = split_authority(authority).map_err(|e| format!("{shown:?}: {e}"))?;
        let mut target = Self {
            host,
            port,
            mount: mount.to_owned(),
            user: decode(user).map_err(|e| format!("{shown:?}: the user {e}"))?,
            password,
            kbps: None,
            public: false,
            name: None,
            description: None,
            genre: None,
            url: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            target.set(pair).map_err(|e| format!("{shown:?}: {e}"))?;
        }
        Ok(target)
    }

    /// Applies one `key=value` of the query.
    fn set(&mut self, pair: &str) -> Result<(), String> {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value).map_err(|e| format!("`{key}` {e}"))?;
        match key {
            "kbps" => {
                let kbps = value
                    .parse()
                    .map_err(|_| format!("?kbps={value} is not a whole number of kbit/s"))?;
                self.kbps = Some(kbps);
            }
            "public" => {
                self.public = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("?public={value}: expected 0 or 1")),
                };
            }
            "name" => self.name = Some(value),
            "description" => self.description = Some(value),
            "genre" => self.genre = Some(value),
            "url" => self.url = Some(value),
            _ => {
                return Err(format!(
                    "unknown option `{key}` (known: kbps, public, name, description, genre, url)"
                ))
            }
        }
        Ok(())
    }
}

/// `HOST:PORT`, `HOST` or `[V6]:PORT`.
fn split_authority(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{authority:?} has an unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host before the mount".to_owned());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_owned(), port))
}

/// Percent-decodes `s`.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "has a `%` not followed by two hex digits".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded".to_owned())
}

/// `url` with the password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, location)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{location}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_parses() {
        let t = IcecastTarget::parse(
            "icecast://source:p%40ss@radio.example:8100/live.opus?kbps=96&public=1&name=Night%20air",
        )
        .expect("valid");
        assert_eq!(t.host, "radio.example");
        assert_eq!(t.port, 8100);
        assert_eq!(t.mount, "/live.opus");
        assert_eq!(t.user, "source");
        assert_eq!(t.password, "p@ss");
        assert_eq!(t.kbps, Some(96));
        assert!(t.public);
        assert_eq!(t.name.as_deref(), Some("Night air"));
        assert!(!t.to_string().contains("p@ss"), "{t}");
        let v6 = IcecastTarget::parse("icecast://:pw@[::1]/m").expect("valid");
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.user.as_str()),
            ("::1", 8000, "source")
        );
        assert_eq!(v6.authority(), "[::1]:8000");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, says) in [
            ("http://source:pw@h:8000/m", "not an icecast:// URL"),
            ("icecast://h:8000/m", "no credentials"),
            ("icecast://source:@h:8000/m", "empty password"),
            ("icecast://source:secret@h:8000", "names no mount"),
            ("icecast://source:secret@h:8000/", "names no mount"),
            ("icecast://source:secret@h:99999/m", "port"),
            ("icecast://source:secret@:8000/m", "no host"),
            ("icecast://source:secret@h/m?kbps=x", "kbps"),
            (
                "icecast://source:secret@h/m?bitrate=9",
                "unknown option `bitrate`",
            ),
            ("icecast://source:sec%2@h/m", "password"),
        ] {
            let e = IcecastTarget::parse(url).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
        }
    }
}
