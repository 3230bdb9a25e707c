//! `/learn/`: the student page — plain HTML, CSS and JavaScript compiled into the binary,
//! no build toolchain. It calls the same API as every client, on the same origin, so Trac's
//! login cookie signs it in.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../learn/index.html");
const SCRIPT: &str = include_str!("../learn/app.js");
const STYLE: &str = include_str!("../learn/style.css");

/// Only this origin's scripts, styles and API; no inline script can run.
const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn file(body: &'static str, kind: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Shipped in the binary: a new deploy is a new page, so always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}

/// `/learn` → `/learn/`, so the page's relative world is one folder.
pub async fn bare() -> Redirect {
    Redirect::permanent("/learn/")
}
