//! The answers the host gives a request itself, when the guest cannot or may not: each
//! with its status and a body that says, in a few words, why. A body never says more than
//! that, so nothing of the host's inner workings reaches a client.

use crate::body::{ResponseBody, full};
use crate::slots::Shed;
use http::{HeaderValue, Request, Response, StatusCode, header};
use wasmlens_engine::GuestFailure;
use wasmlens_telemetry::names::error_type;

/// Why the host answered a request itself.
#[derive(Debug)]
pub(crate) enum HostAnswer {
    /// No route serves the request's path.
    NoRoute,
    /// The request line and headers are larger than `limit` bytes.
    HeadersTooLarge { limit: usize },
    /// The declared body is larger than `limit` bytes.
    BodyTooLarge { limit: u64 },
    /// The guest failed (trapped, or hit a limit) before it answered.
    GuestFailed(GuestFailure),
    /// The guest answered with an error, or returned without answering.
    NoAnswer,
    /// Every request slot was taken, and the queue too (or the wait was too long).
    Shed(Shed),
}

impl HostAnswer {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::GuestFailed(_) | Self::NoAnswer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Shed(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `error.type` where the answer has one of its own (a guest's failure has its kind;
    /// any other 5xx, its status code).
    pub fn error_type(&self) -> Option<&'static str> {
        match self {
            Self::Shed(Shed::QueueFull) => Some(error_type::QUEUE_FULL),
            Self::Shed(Shed::QueueTimeout(_)) => Some(error_type::QUEUE_TIMEOUT),
            _ => None,
        }
    }

    /// The failure of the guest, if that is why.
    pub fn into_failure(self) -> Option<GuestFailure> {
        match self {
            Self::GuestFailed(failure) => Some(failure),
            _ => None,
        }
    }

    pub fn response(&self) -> Response<ResponseBody> {
        let reason = match self {
            Self::NoRoute => "no route serves this path".to_owned(),
            Self::HeadersTooLarge { limit } => {
                format!("the request line and headers are larger than {limit} bytes")
            }
            Self::BodyTooLarge { limit } => format!("the body is larger than {limit} bytes"),
            Self::GuestFailed(failure) => failure.kind.describe().to_owned(),
            Self::NoAnswer => "the component gave no answer".to_owned(),
            Self::Shed(Shed::QueueFull) => {
                "every request slot is taken and the queue is full; try again later".to_owned()
            }
            Self::Shed(Shed::QueueTimeout(waited)) => {
                format!("no request slot came free within {waited:?}; try again later")
            }
        };
        let status = self.status();
        let canonical = status.canonical_reason().unwrap_or("");
        let mut response =
            Response::new(full(format!("{} {canonical}: {reason}\n", status.as_u16())));
        *response.status_mut() = status;
        let plain = HeaderValue::from_static("text/plain");
        response.headers_mut().insert(header::CONTENT_TYPE, plain);
        if let Self::Shed(_) = self {
            // A second: long enough for in-flight requests to finish, short for a client.
            let retry = HeaderValue::from_static("1");
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        response
    }
}

/// The size of a request's line and headers as a client sends them: `METHOD TARGET
/// HTTP/1.1`, then `NAME: VALUE` for each header, each line ending in CRLF, and the empty
/// line that ends them.
pub(crate) fn head_size<B>(request: &Request<B>) -> usize {
    const CRLF: usize = 2;
    let target = match request.uri().path_and_query() {
        Some(origin_form) if request.uri().authority().is_none() => origin_form.as_str().len(),
        _ => request.uri().to_string().len(),
    };
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len() + CRLF;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + CRLF)
        .sum();
    line + headers + CRLF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_counted_as_it_is_sent() {
        let request = Request::get("/a?b=c")
            .header("host", "example")
            .header("x-one", "1")
            .body(())
            .unwrap();
        let sent = "GET /a?b=c HTTP/1.1\r\nhost: example\r\nx-one: 1\r\n\r\n";
        assert_eq!(head_size(&request), sent.len());
    }
}
