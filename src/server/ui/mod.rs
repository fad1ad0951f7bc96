//! The web dashboard at `/ui`: a handful of static files compiled into the binary
//! (`include_str!`), served with their content type, a strict Content-Security-Policy and an
//! ETag. The page is a plain client of the public API (`/api/tags`, `/api/ps`, `/api/pull`,
//! `/api/delete`, `/api/chat`, `/metrics`); this module serves files and nothing else, so the
//! dashboard can do no more than any other local client. CORS and the Host guard wrap these routes
//! like every other (see [`crate::server::router`]). See docs/ui.md.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// No inline script or style, no plugins, no framing, and the page may talk to its own origin
/// only. Everything the page needs is a file below, so `'self'` is the whole allow-list.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/api.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
    Asset {
        name: "logo.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/logo.svg"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/favicon.svg"),
    },
];

/// Each asset's strong ETag: a content hash, computed once. The names carry no hash, so browsers
/// must revalidate (`no-cache`); an unchanged file then costs a 304 and no body.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = Sha256::digest(a.body.as_bytes());
                format!("\"{}\"", &hex::encode(h)[..20])
            })
            .collect()
    })
}

/// `GET /ui` and `GET /ui/`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{file}`: one asset, or 404 with the same text as any unknown route.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_referenced_by_the_page_or_a_module() {
        // A file no page links to is dead weight in the binary; one linked but not listed 404s.
        let index = ASSETS[0].body;
        for a in &ASSETS[1..] {
            let linked = ASSETS
                .iter()
                .any(|o| o.body.contains(&format!("/ui/{}", a.name)))
                || index.contains(&format!("./{}", a.name));
            assert!(linked, "{} is embedded but nothing links to it", a.name);
        }
    }

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        // The CSP would block them; catching it here is cheaper than in the browser test.
        let index = ASSETS[0].body;
        assert!(!index.contains("<script>"), "inline <script>");
        assert!(!index.contains("<style"), "inline <style>");
        assert!(!index.contains(" style="), "inline style attribute");
        let handler = index.split(" on").skip(1).any(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
    }
}
