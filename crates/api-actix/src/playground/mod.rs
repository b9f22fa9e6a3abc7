//! The playground: a small single-page chat client at `GET /`, for trying every
//! feature of the API in a browser and as a reference for front-end teams. Its HTML,
//! CSS and JavaScript are compiled into the binary; it calls the public API only, with
//! the token the user gives it (on the embedded defaults, the development token is
//! filled in). On by default in development, off when `APP_ENV=production`
//! (`http.playground`).
//!
//! The page is served with a strict `Content-Security-Policy` (scripts and styles from
//! this origin only, no inline script or style, no framing, requests to this origin
//! only) and `X-Content-Type-Options: nosniff`; it renders message text as text, never
//! as HTML.

use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{web, HttpResponse, HttpResponseBuilder};

const INDEX: &str = include_str!("assets/index.html");

/// The embedded files under `/playground/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "view.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/view.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

/// Where the page's files are served (`/playground/{file}`).
pub const ASSET_PATH: &str = "/playground/{file}";

/// The policy of the page and its files: everything from this origin only, nothing
/// inline, no plugins, no framing, no form posts, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The placeholder in `index.html` the development token replaces.
const TOKEN_SLOT: &str = "{{DEV_TOKEN}}";

/// Whether the playground is served, and its page as rendered at start.
#[derive(Debug, Clone)]
pub struct Playground {
    enabled: bool,
    page: String,
}

impl Playground {
    /// The playground, on or off; `dev_token` (the generated development token, when
    /// the listener is on a loopback address) is filled in for the page.
    pub fn new(enabled: bool, dev_token: Option<&str>) -> Self {
        Self {
            enabled,
            page: render(dev_token),
        }
    }

    /// Whether `GET /` serves the page.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// The page with `dev_token` (HTML-escaped) in its `playground-token` meta tag.
pub fn render(dev_token: Option<&str>) -> String {
    INDEX.replace(TOKEN_SLOT, &escape(dev_token.unwrap_or("")))
}

/// Escapes text for an HTML attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `addr` (`host:port`) listens on a loopback address only: only there is the
/// development token handed to whoever opens the page.
pub fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
}

fn secured(mut res: HttpResponseBuilder, content_type: &str) -> HttpResponseBuilder {
    res.content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    res
}

/// The playground page: a chat client in the browser (HTML; its scripts and styles
/// are under `/playground/`). 404 when `http.playground` is off.
#[utoipa::path(get, path = "/", tag = "operations",
    responses(
        (status = 200, content_type = "text/html", body = String,
            description = "The playground page (HTML)",
            headers(
                ("Content-Security-Policy" = String, description = "Scripts, styles and requests from this origin only; nothing inline; no framing"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"))),
        (status = 404, body = crate::error::Problem,
            description = "The playground is off (`http.playground`)")))]
pub async fn playground(page: web::Data<Playground>) -> Result<HttpResponse, ApiError> {
    if !page.enabled {
        return Err(ApiError::NotFound);
    }
    // The page may carry the development token: never cached.
    Ok(secured(HttpResponse::Ok(), "text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page.page.clone()))
}

/// One of the page's embedded files; 404 for any other name, or when the playground
/// is off.
pub async fn asset(
    page: web::Data<Playground>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !page.enabled {
        return Err(ApiError::NotFound);
    }
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(secured(HttpResponse::Ok(), content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_escaped_into_the_meta_tag() {
        let page = render(Some("a\"b<c>&"));
        assert!(
            page.contains(r#"content="a&quot;b&lt;c&gt;&amp;""#),
            "{page}"
        );
        assert!(!page.contains(TOKEN_SLOT));
        assert!(render(None).contains(r#"name="playground-token" content="""#));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_remote() {
        let page = render(None);
        assert!(!page.contains("<style"), "inline style");
        assert!(!page.contains(" style="), "inline style attribute");
        for (i, _) in page.match_indices(" on") {
            let name: String = page[i + 3..]
                .chars()
                .take_while(char::is_ascii_lowercase)
                .collect();
            let after = page[i + 3 + name.len()..].chars().next();
            assert!(
                name.is_empty() || after != Some('='),
                "inline event handler on{name}"
            );
        }
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..i + page[i..].find('>').unwrap()];
            assert!(tag.contains(" src=\"/playground/"), "inline script: {tag}");
        }
        for (_, _, body) in ASSETS {
            assert!(!body.contains("innerHTML"), "assets never use innerHTML");
            assert!(!body.contains("http://") && !body.contains("https://"));
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn only_loopback_listeners_get_the_dev_token() {
        assert!(is_loopback("127.0.0.1:8080"));
        assert!(is_loopback("[::1]:8080"));
        assert!(!is_loopback("0.0.0.0:8080"));
        assert!(!is_loopback("10.1.2.3:8080"));
    }
}
