//! `--client-dir`: a web client served from a directory, as the original Auralis
//! server served its `client/`: the directory's `index.html` at `/` and every file
//! under `/client/`. Deployments that keep the original, unmodified browser client
//! use it with `--default-format json`.
//!
//! Only plain files inside the directory are served: a path with `..`, a root, or
//! a link leading out of the directory is a 404, as is a missing file.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The content type of a client file, by its extension.
#[must_use]
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The file `url_path` names inside `dir`, if it is a plain file there.
#[must_use]
pub fn resolve(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = Path::new(url_path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let root = dir.canonicalize().ok()?;
    let file = root.join(relative).canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

async fn serve(dir: &Path, url_path: &str) -> Response {
    let Some(file) = resolve(dir, url_path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let read = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || std::fs::read(file)).await
    };
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type(&file)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read a client file");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// `GET /` with a client directory: its `index.html`.
pub async fn client_index(State(state): State<AppState>) -> Response {
    match &state.config.client_dir {
        Some(dir) => serve(dir, "index.html").await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /client/{*path}`: a file of the client directory.
pub async fn client_file(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    match &state.config.client_dir {
        Some(dir) => serve(dir, &path).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_inside_the_directory_are_served() {
        let root = std::env::temp_dir().join(format!("auralis-client-dir-{}", std::process::id()));
        let outside = root.join("outside.txt");
        let dir = root.join("client");
        std::fs::create_dir_all(dir.join("sub")).expect("dirs");
        std::fs::write(dir.join("index.html"), "<p>").expect("index");
        std::fs::write(dir.join("sub/app.js"), "1").expect("js");
        std::fs::write(&outside, "secret").expect("outside");
        assert!(resolve(&dir, "index.html").is_some());
        assert!(resolve(&dir, "sub/app.js").is_some());
        for bad in [
            "../outside.txt",
            "/etc/passwd",
            "sub/../../outside.txt",
            "sub",
            "missing.js",
        ] {
            assert_eq!(resolve(&dir, bad), None, "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, dir.join("link.txt")).expect("link");
            assert_eq!(
                resolve(&dir, "link.txt"),
                None,
                "a link out of the directory"
            );
        }
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.bin")), "application/octet-stream");
        std::fs::remove_dir_all(&root).expect("clean up");
    }
}
