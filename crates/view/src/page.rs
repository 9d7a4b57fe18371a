//! The page: one HTML document for every screen, a script and a style sheet, built into
//! the binary so that the view works offline.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/view.js");
const STYLE: &str = include_str!("../assets/view.css");

/// The page's answer to `path`, or `None` where it has nothing there.
pub(crate) fn answer(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/assets/view.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/assets/view.css" => (STYLE, "text/css; charset=utf-8"),
        "/" | "/traces" | "/logs" | "/workload" => (INDEX, "text/html; charset=utf-8"),
        _ if is_trace_page(path) => (INDEX, "text/html; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    // Nothing from elsewhere: no script, style, font or image but the view's own.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'self'; img-src 'self' data:"),
    );
    Some(response)
}

/// `/traces/` and 32 hex digits.
fn is_trace_page(path: &str) -> bool {
    path.strip_prefix("/traces/")
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}
