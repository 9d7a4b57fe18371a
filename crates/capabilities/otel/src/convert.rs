//! wasi:otel's types as the OpenTelemetry API's: ids from hex, times from wall-clock
//! datetimes, and attribute values from the JSON text wasi:otel carries them in.

use crate::bindings::wasi::otel::{tracing as wit, types};
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

/// At most this many attributes, events or links are taken from one guest span, event,
/// link or record (the SDK's own default limit): the rest are dropped and counted.
pub const MAX_ITEMS: usize = 128;
/// The longest text (a name, an attribute's value, a body) taken from a guest, in bytes;
/// a longer one is cut.
pub const MAX_TEXT: usize = 16 * 1024;

/// `text`, cut to [`MAX_TEXT`] bytes at a character boundary.
pub fn text(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

pub fn time(datetime: Datetime) -> SystemTime {
    let since_epoch = Duration::new(datetime.seconds, datetime.nanoseconds.min(999_999_999));
    UNIX_EPOCH.checked_add(since_epoch).unwrap_or(UNIX_EPOCH)
}

pub fn trace_id(hex: &str) -> Option<TraceId> {
    TraceId::from_hex(hex)
        .ok()
        .filter(|id| *id != TraceId::INVALID)
}

pub fn span_id(hex: &str) -> Option<SpanId> {
    SpanId::from_hex(hex)
        .ok()
        .filter(|id| *id != SpanId::INVALID)
}

pub fn flags(flags: wit::TraceFlags) -> TraceFlags {
    match flags.contains(wit::TraceFlags::SAMPLED) {
        true => TraceFlags::SAMPLED,
        false => TraceFlags::default(),
    }
}

/// A guest's span context; `None` if its ids are not valid.
pub fn span_context(context: &wit::SpanContext) -> Option<SpanContext> {
    let state = context
        .trace_state
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Some(SpanContext::new(
        trace_id(&context.trace_id)?,
        span_id(&context.span_id)?,
        flags(context.trace_flags),
        context.is_remote,
        TraceState::from_key_value(state).unwrap_or_default(),
    ))
}

/// The host's span context, for the guest.
pub fn to_guest(context: &SpanContext) -> wit::SpanContext {
    let trace_state = context.trace_state().header();
    let trace_state = trace_state
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    wit::SpanContext {
        trace_id: context.trace_id().to_string(),
        span_id: context.span_id().to_string(),
        trace_flags: match context.is_sampled() {
            true => wit::TraceFlags::SAMPLED,
            false => wit::TraceFlags::empty(),
        },
        is_remote: context.is_remote(),
        trace_state,
    }
}

pub fn kind(kind: wit::SpanKind) -> SpanKind {
    match kind {
        wit::SpanKind::Client => SpanKind::Client,
        wit::SpanKind::Server => SpanKind::Server,
        wit::SpanKind::Producer => SpanKind::Producer,
        wit::SpanKind::Consumer => SpanKind::Consumer,
        wit::SpanKind::Internal => SpanKind::Internal,
    }
}

pub fn status(status: wit::Status) -> Status {
    match status {
        wit::Status::Unset => Status::Unset,
        wit::Status::Ok => Status::Ok,
        wit::Status::Error(description) => Status::error(description),
    }
}

/// The attributes, at most [`MAX_ITEMS`] of them, and how many were dropped.
pub fn attributes(list: Vec<types::KeyValue>) -> (Vec<KeyValue>, u32) {
    let dropped = list.len().saturating_sub(MAX_ITEMS);
    let kept = list.into_iter().take(MAX_ITEMS);
    let kept = kept.map(|kv| KeyValue::new(text(kv.key), value(&text(kv.value))));
    (kept.collect(), u32::try_from(dropped).unwrap_or(u32::MAX))
}

/// An attribute value from its JSON text: strings, booleans, integers, floats and arrays
/// of one of them as themselves; anything else (an object, a mixed array, text that is
/// not JSON) as its text.
pub fn value(json: &str) -> Value {
    use serde_json::Value as Json;
    let Ok(parsed) = serde_json::from_str::<Json>(json) else {
        return Value::from(json.to_owned());
    };
    match parsed {
        Json::String(text) => Value::from(text),
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::I64(i),
            None => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(items) => {
            array(&items).map_or_else(|| Value::from(json.to_owned()), Value::Array)
        }
        Json::Null | Json::Object(_) => Value::from(json.to_owned()),
    }
}

fn array(items: &[serde_json::Value]) -> Option<Array> {
    use serde_json::Value as Json;
    let first = items.first()?;
    Some(match first {
        Json::String(_) => Array::String(
            items
                .iter()
                .map(|i| i.as_str().map(|s| StringValue::from(s.to_owned())))
                .collect::<Option<_>>()?,
        ),
        Json::Bool(_) => Array::Bool(items.iter().map(Json::as_bool).collect::<Option<_>>()?),
        Json::Number(n) if n.is_i64() => {
            Array::I64(items.iter().map(Json::as_i64).collect::<Option<_>>()?)
        }
        Json::Number(_) => Array::F64(items.iter().map(Json::as_f64).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// A log record's body from its JSON text: any JSON value, maps and lists included.
pub fn any_value(json: &str) -> AnyValue {
    if json.len() > MAX_TEXT {
        return AnyValue::from(text(json.to_owned()));
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(parsed) => json_any(parsed),
        Err(_) => AnyValue::from(json.to_owned()),
    }
}

fn json_any(json: serde_json::Value) -> AnyValue {
    use serde_json::Value as Json;
    match json {
        Json::Null => AnyValue::from(String::new()),
        Json::Bool(b) => AnyValue::Boolean(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => AnyValue::from(text(s)),
        Json::Array(items) => {
            AnyValue::ListAny(Box::new(items.into_iter().map(json_any).collect()))
        }
        Json::Object(map) => AnyValue::Map(Box::new(
            map.into_iter()
                .map(|(k, v)| (k.into(), json_any(v)))
                .collect(),
        )),
    }
}

/// A guest's instrumentation scope, as the SDK names one.
pub fn scope(scope: types::InstrumentationScope) -> InstrumentationScope {
    let mut builder = InstrumentationScope::builder(text(scope.name));
    if let Some(version) = scope.version {
        builder = builder.with_version(version);
    }
    if let Some(url) = scope.schema_url {
        builder = builder.with_schema_url(url);
    }
    let (attributes, _) = attributes(scope.attributes);
    builder.with_attributes(attributes).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_come_from_their_json_text() {
        assert_eq!(value(r#""text""#), Value::from("text"));
        assert_eq!(value("42"), Value::I64(42));
        assert_eq!(value("1.5"), Value::F64(1.5));
        assert_eq!(value("true"), Value::Bool(true));
        assert_eq!(
            value(r#"["a","b"]"#),
            Value::Array(Array::String(vec!["a".into(), "b".into()]))
        );
        assert_eq!(value("[1,2]"), Value::Array(Array::I64(vec![1, 2])));
        assert_eq!(
            value(r#"[1,"b"]"#),
            Value::from(r#"[1,"b"]"#),
            "mixed: as text"
        );
        assert_eq!(value(r#"{"a":1}"#), Value::from(r#"{"a":1}"#));
        assert_eq!(value("not json"), Value::from("not json"));
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let cut = text(long);
        assert!(cut.len() <= MAX_TEXT && cut.len() > MAX_TEXT - 2);
        assert_eq!(text("short".into()), "short");
    }

    #[test]
    fn ids_must_be_valid_hex_and_not_zero() {
        assert!(trace_id("4bf92f3577b34da6a3ce929d0e0e4736").is_some());
        assert!(trace_id("00000000000000000000000000000000").is_none());
        assert!(trace_id("xyz").is_none());
        assert!(span_id("00f067aa0ba902b7").is_some());
    }
}
