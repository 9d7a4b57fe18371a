//! The span exporter for OTLP over HTTP/protobuf: batches encoded by [`TraceEncoder`],
//! sent as opentelemetry-otlp's HTTP exporter sends them (its headers, compression,
//! body-size limit, retry policy and error results), through the same HTTP client.

use super::encode::TraceEncoder;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use opentelemetry_http::{HttpClient, ResponseBodyTooLarge};
use opentelemetry_otlp::ExporterBuildError;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::borrow::Borrow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The status a response too large to read stands for: not retried.
const TOO_LARGE: u16 = u16::MAX;

/// opentelemetry-otlp's limit on a request body, before and after compression.
const MAX_BODY_BYTES: usize = 64 << 20;

/// opentelemetry-otlp's recommended retry policy, which its exporters use by default.
const MAX_RETRIES: usize = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
const MAX_THROTTLE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct HttpSpanExporter {
    client: Arc<dyn HttpClient>,
    endpoint: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    gzip: bool,
    /// The deadline of an export with its retries.
    timeout: Duration,
    encoder: Mutex<TraceEncoder>,
    shut_down: AtomicBool,
}

impl HttpSpanExporter {
    /// An exporter to `endpoint`, as given (a per-signal URL, or the base one with
    /// `/v1/traces` already appended), with the headers and compression of the
    /// `OTEL_EXPORTER_OTLP_TRACES_*` or `OTEL_EXPORTER_OTLP_*` variables.
    pub(crate) fn new(
        client: Arc<dyn HttpClient>,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Self, ExporterBuildError> {
        let endpoint = Uri::from_str(endpoint).map_err(|err| {
            ExporterBuildError::InvalidConfiguration(format!(
                "endpoint: invalid endpoint '{endpoint}': {err}"
            ))
        })?;
        Ok(HttpSpanExporter {
            client,
            endpoint,
            headers: headers_from_env(),
            gzip: gzip_from_env(),
            timeout,
            // The SDK's exporter has an empty resource until the provider sets its own.
            encoder: Mutex::new(TraceEncoder::new(&Resource::builder_empty().build())),
            shut_down: AtomicBool::new(false),
        })
    }

    /// The request body: the encoded batch, compressed if asked.
    fn body<S: Borrow<SpanData>>(&self, batch: &[S]) -> Result<Bytes, String> {
        let mut encoder = self.encoder.lock().unwrap_or_else(PoisonError::into_inner);
        let encoded = encoder.encode(batch);
        check_size(encoded.len(), "uncompressed")?;
        if !self.gzip {
            // Sent as it is, not copied: the encoder starts its next batch in a new buffer.
            return Ok(Bytes::from(encoder.take_encoded()));
        }
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(encoded).map_err(|err| err.to_string())?;
        let compressed = gz.finish().map_err(|err| err.to_string())?;
        check_size(compressed.len(), "compressed")?;
        Ok(Bytes::from(compressed))
    }

    async fn send_once(&self, body: &Bytes) -> Result<(), Failure> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf");
        if self.gzip {
            request = request.header(header::CONTENT_ENCODING, "gzip");
        }
        let mut request = request
            .body(body.clone())
            .map_err(|err| Failure::status(400, format!("Failed to build HTTP request: {err}")))?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let response = self.client.send_bytes(request).await.map_err(|err| {
            if err.downcast_ref::<ResponseBodyTooLarge>().is_some() {
                return Failure::status(TOO_LARGE, err.to_string());
            }
            // The client keeps the whole cause for the export-health lines.
            Failure::status(0, "HTTP export failed: network error".to_owned())
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Err(Failure {
            status,
            retry_after,
            message: format!("HTTP export failed with status code: {status}"),
        })
    }
}

impl SpanExporter for HttpSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.export_spans(&batch).await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        let encoder = self
            .encoder
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        encoder.set_resource(resource);
    }
}

impl HttpSpanExporter {
    /// Exports `batch`, whether its spans are owned (the SDK's processors) or shared
    /// (see [`crate::shared_batch`]).
    pub(crate) async fn export_spans<S: Borrow<SpanData>>(&self, batch: &[S]) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::InternalFailure(
                "Exporter already shutdown".to_owned(),
            ));
        }
        let body = self.body(batch).map_err(OTelSdkError::InternalFailure)?;
        // Retried as opentelemetry-otlp retries: throttling, unavailability and network
        // errors, with exponential backoff and jitter, within the exporter's timeout.
        let start = Instant::now();
        let mut attempt = 0;
        let mut delay = INITIAL_DELAY;
        let mut delay_cap = MAX_DELAY;
        loop {
            let failure = match self.send_once(&body).await {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            let give_up = || Err(OTelSdkError::InternalFailure(failure.message.clone()));
            if start.elapsed() >= self.timeout || attempt >= MAX_RETRIES {
                return give_up();
            }
            match failure.retry() {
                Retry::No => return give_up(),
                Retry::After(server_delay) => {
                    let server_delay = server_delay.min(MAX_THROTTLE);
                    if server_delay > delay_cap {
                        delay_cap = MAX_THROTTLE;
                    }
                    delay = delay.max(server_delay);
                }
                Retry::Backoff => {}
            }
            attempt += 1;
            let sleep = (delay + jitter()).min(delay_cap);
            if sleep >= self.timeout.saturating_sub(start.elapsed()) {
                return give_up();
            }
            // The batch processors export on a thread of their own, outside any
            // async runtime, as opentelemetry-otlp assumes there.
            std::thread::sleep(sleep);
            delay = (delay * 2).min(delay_cap);
        }
    }
}

/// Why a request failed: its status (0 when it got none), and the throttling hint.
struct Failure {
    status: u16,
    retry_after: Option<String>,
    message: String,
}

enum Retry {
    No,
    Backoff,
    After(Duration),
}

impl Failure {
    fn status(status: u16, message: String) -> Self {
        Failure {
            status,
            retry_after: None,
            message,
        }
    }

    /// opentelemetry-otlp's classification of HTTP failures.
    fn retry(&self) -> Retry {
        match self.status {
            429 | 503 => match self.retry_after.as_deref().and_then(retry_after) {
                Some(delay) => Retry::After(delay),
                None => Retry::Backoff,
            },
            0 | 502 | 504 => Retry::Backoff,
            _ => Retry::No,
        }
    }
}

/// A `Retry-After` in seconds or as an HTTP date, at most ten minutes.
fn retry_after(value: &str) -> Option<Duration> {
    let seconds = match value.trim().parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let when = httpdate::parse_http_date(value).ok()?;
            let now = std::time::SystemTime::now();
            when.duration_since(now).map_or(0, |delay| delay.as_secs())
        }
    };
    Some(Duration::from_secs(seconds.min(600)))
}

fn jitter() -> Duration {
    use std::hash::{BuildHasher, RandomState};
    Duration::from_millis(RandomState::new().hash_one(Instant::now()) % (MAX_JITTER_MS + 1))
}

fn check_size(len: usize, representation: &str) -> Result<(), String> {
    if len > MAX_BODY_BYTES {
        return Err(format!(
            "OTLP HTTP {representation} request body is {len} bytes, exceeding the configured limit of {MAX_BODY_BYTES} bytes; request will not be sent and telemetry data will be discarded; reduce the batch size, telemetry item size, or configure a larger limit"
        ));
    }
    Ok(())
}

/// The first of these variables that is set and not empty.
fn first_var(names: [&str; 2]) -> Option<String> {
    names
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

/// The headers every request carries: opentelemetry-otlp's `User-Agent` (the version of
/// the crate wasmlens builds with), then `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else
/// `OTEL_EXPORTER_OTLP_HEADERS`, a later one replacing an earlier one of the same name.
fn headers_from_env() -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![(
        header::USER_AGENT,
        HeaderValue::from_static("OTel-OTLP-Exporter-Rust/0.33.1"),
    )];
    let input = first_var([
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]);
    for (key, value) in parse_headers(input.as_deref().unwrap_or_default()) {
        let (Ok(name), Ok(value)) = (HeaderName::from_str(key), HeaderValue::from_str(&value))
        else {
            continue;
        };
        headers.retain(|(existing, _)| *existing != name);
        headers.push((name, value));
    }
    headers
}

/// `key=value` pairs separated by commas, each value percent-decoded (or kept as given
/// when that fails); a pair without a key or a value is skipped. opentelemetry-otlp's
/// parsing, to the letter.
fn parse_headers(input: &str) -> impl Iterator<Item = (&str, String)> {
    input
        .split_terminator(',')
        .map(str::trim)
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value = url_decode(value.trim()).unwrap_or_else(|| value.to_owned());
            Some((key.trim(), value))
        })
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
}

/// Decodes `%XX` escapes; `None` if one is malformed or the bytes are not UTF-8.
fn url_decode(value: &str) -> Option<String> {
    let mut result = String::with_capacity(value.len());
    let mut pending = Vec::new();
    let mut chars = value.chars();
    loop {
        let ch = chars.next();
        if ch == Some('%') {
            let hex: String = [chars.next()?, chars.next()?].into_iter().collect();
            pending.push(u8::from_str_radix(&hex, 16).ok()?);
            continue;
        }
        if !pending.is_empty() {
            result.push_str(std::str::from_utf8(&pending).ok()?);
            pending.clear();
        }
        match ch {
            Some(c) => result.push(c),
            None => return Some(result),
        }
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else `OTEL_EXPORTER_OTLP_COMPRESSION`, as
/// opentelemetry-otlp reads them: `none` turns compression off; `gzip` on; a value it
/// cannot use (zstd is not built in) passes to the next variable.
fn gzip_from_env() -> bool {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ] {
        let Some(value) = std::env::var(name).ok().filter(|value| !value.is_empty()) else {
            continue;
        };
        if value.eq_ignore_ascii_case("none") {
            return false;
        }
        if value.eq_ignore_ascii_case("gzip") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// opentelemetry-otlp's own cases for its header parsing.
    #[test]
    fn headers_parse_as_opentelemetry_otlp_parses_them() {
        let cases: [(&str, &[(&str, &str)]); 8] = [
            ("k1=v1", &[("k1", "v1")]),
            ("k1=v1,k2=v2", &[("k1", "v1"), ("k2", "v2")]),
            ("k1=v1=10,k2,k3", &[("k1", "v1=10")]),
            ("k1=v1,,,k2,k3=10", &[("k1", "v1"), ("k3", "10")]),
            (
                "Authentication=Basic%20AAA",
                &[("Authentication", "Basic AAA")],
            ),
            ("k1=%XX", &[("k1", "%XX")]),
            ("=v1,k1=", &[]),
            (
                "a=%C3%B6%C3%A0%C2%A7, b = v 1 ",
                &[("a", "öà§"), ("b", "v 1")],
            ),
        ];
        for (input, expected) in cases {
            let parsed: Vec<_> = parse_headers(input).collect();
            let expected: Vec<_> = expected
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect();
            assert_eq!(parsed, expected, "{input}");
        }
        assert_eq!(url_decode("v%201").as_deref(), Some("v 1"));
        assert_eq!(url_decode("v%XX1"), None);
        assert_eq!(url_decode("a%20b%"), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("9999"), Some(Duration::from_secs(600)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let delay = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!((118..=120).contains(&delay.as_secs()), "{delay:?}");
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn failures_are_retried_as_opentelemetry_otlp_retries_them() {
        let with = |status, after: Option<&str>| Failure {
            status,
            retry_after: after.map(str::to_owned),
            message: String::new(),
        };
        assert!(matches!(with(503, Some("2")).retry(), Retry::After(d) if d.as_secs() == 2));
        assert!(matches!(with(429, None).retry(), Retry::Backoff));
        for status in [0, 502, 504] {
            assert!(
                matches!(with(status, None).retry(), Retry::Backoff),
                "{status}"
            );
        }
        for status in [400, 401, 404, 500, TOO_LARGE] {
            assert!(matches!(with(status, None).retry(), Retry::No), "{status}");
        }
    }
}
