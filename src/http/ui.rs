//! `/ui`: the web page, served from the binary. Its few files are embedded at build time, so
//! nothing is fetched at run time and the page always matches the API it was built with.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::context::Context;
use super::error::ApiError;

/// Only our own scripts, styles and API: no inline code, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "campaigns.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/campaigns.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("ui/app.css"),
    ),
    // uPlot, from its npm package (build.rs).
    (
        "uplot.js",
        "text/javascript; charset=utf-8",
        include_str!(concat!(env!("OUT_DIR"), "/uplot.js")),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_str!(concat!(env!("OUT_DIR"), "/uplot.css")),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("ui/favicon.svg"),
    ),
];

/// The page's routes; outside the OpenAPI document, as they are not part of the API.
pub fn router() -> Router<Context> {
    Router::new()
        .route("/ui", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route("/ui/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                asset(&file, &headers)
            }),
        )
}

/// One embedded file, revalidated by its ETag (a hash of its content) on every load, so a new
/// build is seen at once and an unchanged file costs a 304.
fn asset(file: &str, headers: &HeaderMap) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound("there is no such file in the page".into()).into_response();
    };
    let digest: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let etag = format!("\"{digest}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (*body).into_response()
    };
    let set = response.headers_mut();
    set.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    set.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        set.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_with_its_policy_and_revalidates_by_etag() {
        let first = asset("index.html", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let csp = first.headers().get(header::CONTENT_SECURITY_POLICY);
        assert!(csp.is_some_and(|value| value.as_bytes().starts_with(b"default-src 'none'")));
        let mut again = HeaderMap::new();
        let etag = first.headers().get(header::ETAG).cloned();
        assert!(etag.is_some());
        if let Some(etag) = etag {
            again.insert(header::IF_NONE_MATCH, etag);
        }
        assert_eq!(
            asset("index.html", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            asset("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_page_loads_uplot_from_the_binary_before_its_own_script() {
        let page = ASSETS.iter().find(|(name, _, _)| *name == "index.html");
        let script = ASSETS.iter().find(|(name, _, _)| *name == "uplot.js");
        let style = asset("uplot.css", &HeaderMap::new());

        let page = page.map(|(_, _, body)| *body).unwrap_or_default();
        let (Some(ours), Some(library)) = (page.find("/ui/app.js"), page.find("/ui/uplot.js"))
        else {
            panic!("the page loads both scripts: {page}");
        };
        assert!(
            library < ours,
            "uPlot is defined before the page's script runs"
        );
        assert!(script.is_some_and(|(_, _, body)| body.contains("uPlot")));
        assert_eq!(style.status(), StatusCode::OK);
    }
}
