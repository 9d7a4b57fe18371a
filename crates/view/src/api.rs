//! The JSON API: routing, query parameters and answers.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use opentelemetry::trace::TraceId;
use serde::Serialize;
use std::time::Duration;
use wasmlens_telemetry::recorder::{LogFilter, RESOLUTIONS, Recorder, TraceFilter};

/// How many items a listing returns when the query does not say.
const DEFAULT_LIMIT: usize = 100;

type Answer = Response<Full<Bytes>>;

/// Why a request gets no data: its status and a line that says what was wrong.
struct Refusal(StatusCode, String);

impl Refusal {
    fn into_answer(self) -> Answer {
        text(self.0, self.1)
    }
}

pub(crate) fn answer<B>(recorder: &Recorder, request: &Request<B>) -> Answer {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
    }
    let path = request.uri().path();
    if !path.starts_with("/api/")
        && let Some(page) = crate::page::answer(path)
    {
        return page;
    }
    let query = Query::parse(request.uri().query());
    let answered = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "api", "traces"] => traces(recorder, &query),
        ["", "api", "traces", id] => trace_id(id)
            .and_then(|id| recorder.trace(id).ok_or_else(|| not_found(id)))
            .map(|trace| json(&trace)),
        ["", "api", "traces", id, "otlp.json"] => trace_id(id).and_then(|id| {
            let body = recorder.trace_otlp_json(id).ok_or_else(|| not_found(id))?;
            Ok(download(body, &format!("trace-{id}.otlp.json")))
        }),
        ["", "api", "logs"] => logs(recorder, &query),
        ["", "api", "overview"] => resolution(&query).map(|r| json(&recorder.overview(r))),
        ["", "api", "metrics"] => resolution(&query).map(|r| {
            let name = query.get("name");
            json(&recorder.metric_series(name.as_deref(), r))
        }),
        ["", "api", "workloads"] => Ok(json(&recorder.workload_list())),
        ["", "api", "memory"] => Ok(json(&recorder.memory())),
        _ => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!(
                "no {path:?} here: the API is at /api/traces, /api/logs, /api/overview, /api/metrics, /api/workloads and /api/memory\n"
            ),
        )),
    };
    answered.unwrap_or_else(Refusal::into_answer)
}

fn traces(recorder: &Recorder, query: &Query) -> Result<Answer, Refusal> {
    let filter = TraceFilter {
        route: query.get("route"),
        component: query.get("component"),
        status: query.number("status")?,
        errors_only: query.get("errors").is_some_and(|v| v == "true"),
        min_duration: query.number("min_duration_ms")?.map(Duration::from_millis),
    };
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    Ok(json(&recorder.trace_list(&filter, limit)))
}

fn logs(recorder: &Recorder, query: &Query) -> Result<Answer, Refusal> {
    let filter = LogFilter {
        component: query.get("component"),
        min_severity: query.number("min_severity")?,
        trace_id: query.get("trace_id").map(|id| trace_id(&id)).transpose()?,
        after_unix_nano: query.number("after")?,
    };
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    Ok(json(&recorder.log_list(&filter, limit)))
}

/// `resolution=1s|10s|1m` (1s when absent), as an index into the recorder's resolutions.
fn resolution(query: &Query) -> Result<usize, Refusal> {
    let Some(asked) = query.get("resolution") else {
        return Ok(0);
    };
    RESOLUTIONS
        .iter()
        .position(|&(seconds, _)| resolution_name(seconds) == asked)
        .ok_or_else(|| {
            let known: Vec<String> = RESOLUTIONS
                .iter()
                .map(|&(seconds, _)| resolution_name(seconds))
                .collect();
            Refusal(
                StatusCode::BAD_REQUEST,
                format!(
                    "resolution={asked:?}: expected one of {}\n",
                    known.join(", ")
                ),
            )
        })
}

fn resolution_name(seconds: u64) -> String {
    match seconds {
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn trace_id(hex: &str) -> Result<TraceId, Refusal> {
    match TraceId::from_hex(hex) {
        Ok(id) if hex.len() == 32 && id != TraceId::INVALID => Ok(id),
        _ => Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("{hex:?} is not a trace id: expected 32 hex digits, not all zero\n"),
        )),
    }
}

fn not_found(id: TraceId) -> Refusal {
    Refusal(
        StatusCode::NOT_FOUND,
        format!("trace {id} is not (or no longer) kept\n"),
    )
}

/// A request's query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Query(pairs.into_owned().collect())
    }

    /// A parameter's value; an empty one counts as absent.
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Refusal> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value.parse().map(Some).map_err(|_| {
            Refusal(
                StatusCode::BAD_REQUEST,
                format!("{name}={value:?}: expected a whole number\n"),
            )
        })
    }
}

fn json(value: &impl Serialize) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => reply(StatusCode::OK, "application/json", body),
        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")),
    }
}

fn download(body: String, name: &str) -> Answer {
    let mut response = reply(StatusCode::OK, "application/json", body.into_bytes());
    if let Ok(value) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn text(status: StatusCode, body: String) -> Answer {
    reply(status, "text/plain; charset=utf-8", body.into_bytes())
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
