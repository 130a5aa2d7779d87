//! GraphiQL on `GET /`, with every file it needs served by casefile itself (no CDN).
//!
//! The browser files come from the npm packages pinned by `web/package-lock.json`:
//! `build.rs` installs them into `$OUT_DIR/web/node_modules` and they are embedded here.
//! casefile's own page script and style live beside this file in `graphiql/`.
//!
//! Every asset is served under `/assets/{name}` twice: under a name carrying a hash of its
//! contents (what the page links to, cacheable for a year) and under its plain name
//! (cacheable for a few minutes, revalidated by ETag). The page itself is never cached and
//! carries a Content-Security-Policy that allows nothing from another origin.
//!
//! A build made without npm (see `build.rs`) has none of the npm files: `GET /` then
//! answers [`MISSING_PAGE`], which says how to get GraphiQL; the API is the same.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

#[cfg(not(casefile_no_graphiql))]
macro_rules! npm_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/web/node_modules/", $path))
    };
}

#[cfg_attr(casefile_no_graphiql, allow(dead_code))]
const JS: &str = "text/javascript; charset=utf-8";
#[cfg_attr(casefile_no_graphiql, allow(dead_code))]
const CSS: &str = "text/css; charset=utf-8";

/// Whether this build embeds GraphiQL (it does unless it was built without npm).
pub const EMBEDS_GRAPHIQL: bool = !cfg!(casefile_no_graphiql);

/// Plain name, contents and content type of each asset. The npm paths are listed in
/// `build.rs` too.
#[cfg(not(casefile_no_graphiql))]
const SOURCES: &[(&str, &[u8], &str)] = &[
    ("react.production.min.js", npm_file!("react/umd/react.production.min.js"), JS),
    ("react-dom.production.min.js", npm_file!("react-dom/umd/react-dom.production.min.js"), JS),
    ("graphql-ws.min.js", npm_file!("graphql-ws/umd/graphql-ws.min.js"), JS),
    ("graphiql.min.js", npm_file!("graphiql/graphiql.min.js"), JS),
    ("graphiql.min.css", npm_file!("graphiql/graphiql.min.css"), CSS),
    ("casefile-graphiql.js", include_bytes!("graphiql/casefile-graphiql.js"), JS),
    ("casefile-graphiql.css", include_bytes!("graphiql/casefile-graphiql.css"), CSS),
];
#[cfg(casefile_no_graphiql)]
const SOURCES: &[(&str, &[u8], &str)] = &[];

/// `GET /` of a build without GraphiQL: what happened and how to get it.
pub const MISSING_PAGE: &str = include_str!("graphiql/missing.html");

/// The page, with `{{plain name}}` standing for each asset's versioned URL.
const PAGE_TEMPLATE: &str = include_str!("graphiql/index.html");

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=300";

/// Everything but the WebSocket sources of `connect-src`, which name the request's host.
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'";

struct Asset {
    plain: &'static str,
    versioned: String,
    etag: HeaderValue,
    body: &'static [u8],
    content_type: &'static str,
}

struct Embedded {
    assets: Vec<Asset>,
    page: String,
}

static EMBEDDED: LazyLock<Embedded> = LazyLock::new(|| {
    let assets: Vec<Asset> = SOURCES
        .iter()
        .map(|&(plain, body, content_type)| {
            let digest = Sha256::digest(body);
            let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            let versioned = match plain.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                None => format!("{plain}.{hash}"),
            };
            // A hex hash in quotes is always a valid header value.
            let etag = HeaderValue::from_str(&format!("\"{hash}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
            Asset { plain, versioned, etag, body, content_type }
        })
        .collect();
    let page = assets.iter().fold(PAGE_TEMPLATE.to_owned(), |page, asset| {
        page.replace(&format!("{{{{{}}}}}", asset.plain), &format!("assets/{}", asset.versioned))
    });
    Embedded { assets, page }
});

/// `GET /` (GraphiQL) and `GET /assets/{name}`; the parent router merges these.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(page)).route("/assets/{name}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    let page = if EMBEDS_GRAPHIQL { EMBEDDED.page.as_str() } else { MISSING_PAGE };
    let mut response = Html(page).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&headers)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// CSP 3 lets `'self'` match same-host `ws:`/`wss:` URLs, but older browsers do not, so the
/// GraphQL WebSocket of the host the page was loaded from is named as well.
fn content_security_policy(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| is_plain_host(host));
    match host {
        Some(host) => format!("{CSP_BASE} ws://{host} wss://{host}"),
        None => CSP_BASE.to_owned(),
    }
}

/// A host name or IPv4 address with an optional port, and nothing that could add to the
/// policy. (IPv6 literals are left to `'self'`: CSP host sources cannot name them.)
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let found = EMBEDDED.assets.iter().find_map(|asset| {
        if asset.versioned == name {
            Some((asset, IMMUTABLE))
        } else if asset.plain == name {
            Some((asset, SHORT))
        } else {
            None
        }
    });
    let Some((asset, cache_control)) = found else {
        return (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "not found\n",
        )
            .into_response();
    };
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::ETAG, asset.etag.clone()),
    ];
    if matches_etag(&headers, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
        Body::from(asset.body),
    )
        .into_response()
}

/// Whether `If-None-Match` names the asset's entity tag.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(tags) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag == format!("W/{etag}"))
}

#[cfg(test)]
mod missing_tests {
    use super::MISSING_PAGE;

    #[test]
    fn the_page_of_a_build_without_graphiql_says_why_and_how_to_get_it() {
        for needed in ["without GraphiQL", "npm was not found", "apt-get install nodejs npm"] {
            assert!(MISSING_PAGE.contains(needed), "{needed}");
        }
        for needed in ["cargo build --release", "CASEFILE_WEB_NODE_MODULES", "POST /graphql"] {
            assert!(MISSING_PAGE.contains(needed), "{needed}");
        }
        assert!(!MISSING_PAGE.contains("<script"), "the page runs nothing");
    }
}

#[cfg(all(test, not(casefile_no_graphiql)))]
mod tests {
    use super::*;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = routes::<()>().oneshot(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        (parts.status, parts.headers, body)
    }

    fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The `src`/`href` values of the page's `<script>` and `<link>` tags.
    fn linked_assets(page: &str) -> Vec<String> {
        page.split(['"', '\''])
            .filter(|part| part.starts_with("assets/"))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn page_links_only_its_own_versioned_assets() {
        let (status, headers, body) = get("/", &[("host", "127.0.0.1:8080")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_str(&headers, header::CONTENT_TYPE), "text/html; charset=utf-8");
        let page = String::from_utf8(body).expect("utf-8");
        assert!(!page.contains("{{"), "unreplaced placeholder in the page");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"));
        assert!(!page.contains("<script>"), "inline scripts are not allowed by the CSP");
        let linked = linked_assets(&page);
        assert_eq!(linked.len(), SOURCES.len(), "{linked:?}");
        for link in linked {
            let (status, headers, body) = get(&format!("/{link}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "{link}");
            assert_eq!(header_str(&headers, header::CACHE_CONTROL), IMMUTABLE);
            assert!(!body.is_empty());
            let expected = if link.ends_with(".js") { JS } else { CSS };
            assert_eq!(header_str(&headers, header::CONTENT_TYPE), expected, "{link}");
        }
    }

    #[tokio::test]
    async fn page_has_a_strict_content_security_policy() {
        let (_, headers, _) = get("/", &[("host", "example.test:8080")]).await;
        let csp = header_str(&headers, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.ends_with("connect-src 'self' ws://example.test:8080 wss://example.test:8080"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(header_str(&headers, header::CACHE_CONTROL), "no-cache");

        for host in ["evil; script-src *", "[::1]:8080"] {
            let (_, headers, _) = get("/", &[("host", host)]).await;
            let csp = header_str(&headers, header::CONTENT_SECURITY_POLICY);
            assert!(csp.ends_with("connect-src 'self'") && !csp.contains("evil"), "{csp}");
        }
    }

    #[tokio::test]
    async fn plain_names_are_served_with_a_short_cache_and_etag() {
        let (status, headers, body) = get("/assets/casefile-graphiql.js", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_str(&headers, header::CACHE_CONTROL), SHORT);
        assert!(String::from_utf8_lossy(&body).contains("graphql/ws"));
        let etag = header_str(&headers, header::ETAG).to_owned();
        let (status, _, body) =
            get("/assets/casefile-graphiql.js", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn unknown_assets_are_not_found() {
        for uri in
            ["/assets/nope.js", "/assets/..%2Fbuild.rs", "/assets/graphiql.min.000000000000.js"]
        {
            let (status, _, _) = get(uri, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        }
    }
}
