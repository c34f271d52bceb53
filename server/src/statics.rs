//! The web app (`web/`) and the npm package (`pkg/`) as static files.
//!
//! `ServeDir` gives Range, `Last-Modified`/`If-Modified-Since` and content types from the
//! extension (`.wasm` → `application/wasm`, which browsers require for streaming
//! compilation). Responses are compressed (gzip or brotli, as the client accepts) and
//! say `Cache-Control: no-cache`: the browser keeps them but revalidates, so a deployed
//! fix to the crypto code is picked up at the next load rather than after a max-age.

use std::path::PathBuf;

use axum::http::{header, HeaderValue};
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

/// Adds the static routes to `router`; anything else is a 404 problem.
pub fn attach(router: Router, dirs: &StaticDirs) -> Router {
    let router = match &dirs.pkg {
        Some(pkg) => router.nest_service("/pkg", serve(pkg)),
        None => router,
    };
    match &dirs.web {
        Some(web) => router.fallback_service(serve(web)),
        None => router.fallback(|| async { AppError::NoRoute }),
    }
}
