//! The web app (`web/`) and the npm package (`pkg/`) as static files.
//!
//! `ServeDir` gives Range, `Last-Modified`/`If-Modified-Since` and content types from the
//! extension (`.wasm` → `application/wasm`, which browsers require for streaming
//! compilation). Responses are compressed (gzip or brotli, as the client accepts) and
//! say `Cache-Control: no-cache`: the browser keeps them but revalidates, so a deployed
//! fix to the crypto code is picked up at the next load rather than after a max-age.
//!
//! Under `/pkg/` only what the package ships is served: the entries of its
//! `package.json` `files` (and `package.json` itself, which npm always ships). The
//! folder also holds `node_modules/`, the tests and the lock file; those are 404.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;

/// Directories to serve, both optional.
#[derive(Debug, Clone, Default)]
pub struct StaticDirs {
    /// The web app, served at `/`.
    pub web: Option<PathBuf>,
    /// The npm package, served at `/pkg/`.
    pub pkg: Option<PathBuf>,
}

fn serve(dir: &PathBuf) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(CompressionLayer::new())
}

/// Why the package's shipped files could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ShippedFilesError {
    /// `package.json` could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `package.json` has no `files` list of strings.
    #[error("{0}: no \"files\" list of strings")]
    NoFiles(String),
}

/// What the package ships, from its `package.json` `files`: exact paths, and folders
/// (entries ending in `/`, or naming a folder) whose whole content is shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShippedFiles {
    files: Vec<String>,
    folders: Vec<String>,
}

impl ShippedFiles {
    /// Reads `dir/package.json`.
    pub fn read(dir: &Path) -> Result<Self, ShippedFilesError> {
        let path = dir.join("package.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ShippedFilesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let no_files = || ShippedFilesError::NoFiles(path.display().to_string());
        let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|_| no_files())?;
        let entries = manifest
            .get("files")
            .and_then(|f| f.as_array())
            .ok_or_else(no_files)?;
        let mut shipped = Self {
            files: vec!["package.json".to_owned()],
            folders: Vec::new(),
        };
        for entry in entries {
            let entry = entry.as_str().ok_or_else(no_files)?;
            let entry = entry.trim_start_matches("./");
            if entry.ends_with('/') {
                shipped.folders.push(entry.to_owned());
            } else if dir.join(entry).is_dir() {
                shipped.folders.push(format!("{entry}/"));
            } else {
                shipped.files.push(entry.to_owned());
            }
        }
        Ok(shipped)
    }

    /// Whether `path` (relative to the package, as the request wrote it) is shipped. A
    /// path with escapes or dot segments never is: the list holds plain names.
    pub fn contains(&self, path: &str) -> bool {
        if path.contains('%') || path.split('/').any(|seg| seg == ".." || seg == ".") {
            return false;
        }
        self.files.iter().any(|f| f == path)
            || self.folders.iter().any(|d| {
                path.strip_prefix(d.as_str())
                    .is_some_and(|rest| !rest.is_empty())
            })
    }
}

/// Middleware of the package routes: 404 for what the package does not ship.
async fn only_shipped(
    axum::extract::State(shipped): axum::extract::State<Arc<ShippedFiles>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    if shipped.contains(path) {
        next.run(request).await
    } else {
        AppError::NoRoute.into_response()
    }
}

/// Adds the static routes to `router`; anything else is a 404 problem. The package's
/// folder without a readable `package.json` serves nothing (logged).
pub fn attach(router: Router, dirs: &StaticDirs) -> Router {
    let router = match &dirs.pkg {
        Some(pkg) => {
            let shipped = ShippedFiles::read(pkg).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the package's files are not served");
                ShippedFiles::default()
            });
            let service = serve(pkg).layer(axum::middleware::from_fn_with_state(
                Arc::new(shipped),
                only_shipped,
            ));
            router.nest_service("/pkg", service)
        }
        None => router,
    };
    match &dirs.web {
        Some(web) => router.fallback_service(serve(web)),
        None => router.fallback(|| async { AppError::NoRoute }),
    }
}
