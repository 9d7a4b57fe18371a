//! `http.request.method` as the HTTP semantic conventions want it.

use http::Method;

/// One of the known methods, else `_OTHER`, so that a client cannot blow up the
/// cardinality of the metrics. A small index, so that per-method state is an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownMethod(u8);

const METHODS: [&str; KnownMethod::COUNT] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "_OTHER",
];

impl KnownMethod {
    /// How many there are, `_OTHER` included.
    pub const COUNT: usize = 10;

    pub fn of(method: &Method) -> Self {
        KnownMethod(match *method {
            Method::GET => 0,
            Method::POST => 1,
            Method::PUT => 2,
            Method::DELETE => 3,
            Method::HEAD => 4,
            Method::OPTIONS => 5,
            Method::PATCH => 6,
            Method::CONNECT => 7,
            Method::TRACE => 8,
            _ => 9,
        })
    }

    /// Its value of `http.request.method`.
    pub fn name(self) -> &'static str {
        METHODS[usize::from(self.0)]
    }

    /// Its place among the [`KnownMethod::COUNT`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}
