//! A headless Chromium driven over the DevTools protocol, for the player's tests.
//!
//! Chromium is Debian's `chromium` package (CI installs it). `AURALIS_CHROMIUM`
//! overrides the path. A missing browser is an error, so a test that needs one
//! fails instead of passing by doing nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::io::{BufRead as _, BufReader};
use std::sync::mpsc;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile_dir::TempDir,
}

/// Where Chromium is: `AURALIS_CHROMIUM`, else the first of the usual paths.
///
/// # Errors
/// When no browser is installed.
pub fn chromium_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("AURALIS_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .ok_or_else(|| {
        anyhow!("no Chromium found: install Debian's `chromium` (CI does) or set AURALIS_CHROMIUM")
    })
}

mod tempfile_dir {
    //! A throw-away profile directory, removed on drop.
    use std::path::{Path, PathBuf};

    /// The directory.
    pub struct TempDir(PathBuf);

    impl TempDir {
        /// A fresh directory under the system temp dir.
        pub fn new(tag: &str) -> std::io::Result<Self> {
            let dir = std::env::temp_dir().join(format!(
                "auralis-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            std::fs::create_dir_all(&dir)?;
            Ok(Self(dir))
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // Best effort: a leftover profile in /tmp harms nothing.
            let _ignored = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Browser {
    /// Starts headless Chromium (autoplay allowed, no network beyond loopback).
    ///
    /// # Errors
    /// When the browser is missing or does not start.
    pub async fn launch() -> Result<Self> {
        let path = chromium_path()?;
        let profile = tempfile_dir::TempDir::new("chromium")?;
        let mut child = Command::new(&path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--window-size=900,900",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", path.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        // A thread reads Chromium's stderr for the DevTools address, then keeps
        // draining it so the browser never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    // The receiver may have given up waiting; nothing to do then.
                    let _ignored = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(COMMAND_TIMEOUT))
            .await?
            .context("Chromium did not open DevTools in time")?;
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("cannot connect to DevTools")?;
        Ok(Self {
            child,
            ws,
            next_id: 1,
            session: None,
            _profile: profile,
        })
    }

    /// Sends one DevTools command and waits for its result (events are skipped).
    ///
    /// # Errors
    /// On a protocol error or timeout.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await?;
        tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Some(frame) = self.ws.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let v: Value = serde_json::from_str(&text)?;
                if v["id"] == json!(id) {
                    if let Some(err) = v.get("error") {
                        bail!("{method} failed: {err}");
                    }
                    return Ok(v["result"].clone());
                }
            }
            bail!("DevTools connection closed")
        })
        .await
        .with_context(|| format!("{method} timed out"))?
    }

    /// Opens `url` in a new page and attaches to it.
    ///
    /// # Errors
    /// When the page cannot be opened.
    pub async fn open(&mut self, url: &str) -> Result<()> {
        let target = self
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .context("no targetId")?
            .to_owned();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .context("no sessionId")?
                .to_owned(),
        );
        self.call("Page.enable", json!({})).await?;
        self.call("Runtime.enable", json!({})).await?;
        self.call("Page.navigate", json!({"url": url})).await?;
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    ///
    /// # Errors
    /// When the script throws.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("script failed: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Waits until `condition` (a JavaScript expression) is true.
    ///
    /// # Errors
    /// When it is still false after `within`.
    pub async fn wait_for(&mut self, condition: &str, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.eval(condition).await? == json!(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("still false after {within:?}: {condition}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    ///
    /// # Errors
    /// When the capture or the write fails.
    pub async fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser may already be gone; either way it must not outlive the test.
        let _ignored = self.child.kill();
        let _reaped = self.child.wait();
    }
}
