//! Trace context across process boundaries: the environment a process is started with,
//! and the environment a guest gets.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::SpanContext;
use std::collections::HashMap;

/// The OpenTelemetry environment carrier: `traceparent` is read from `TRACEPARENT`, and so
/// on. Otherwise `TRACECONTEXT`, as the containerd shim sets it: a JSON map of header names
/// to values (`{"traceparent":"00-…"}`), or a bare traceparent.
pub fn extract_from_env(
    propagator: &dyn TextMapPropagator,
    lookup: impl Fn(&str) -> Option<String>,
) -> Context {
    let mut carrier: HashMap<String, String> = ["traceparent", "tracestate", "baggage"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), lookup(&key.to_ascii_uppercase())?)))
        .collect();
    if !carrier.contains_key("traceparent")
        && let Some(value) = lookup("TRACECONTEXT").filter(|v| !v.trim().is_empty())
    {
        match serde_json::from_str::<HashMap<String, String>>(&value) {
            Ok(map) => carrier.extend(map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v))),
            Err(_) => {
                carrier.insert("traceparent".to_owned(), value.trim().to_owned());
            }
        }
    }
    propagator.extract(&MapCarrier(&mut carrier))
}

/// The variables [`guest_env`] may set. Where it sets any, the host's trace context
/// replaces a granted one whole: a granted `TRACESTATE` must not go with the host's
/// `TRACEPARENT`.
pub const GUEST_ENV_NAMES: [&str; 2] = ["TRACEPARENT", "TRACESTATE"];

/// `TRACEPARENT` and `TRACESTATE` for a guest whose work is the span `span`, so that a
/// program it hands them to continues the trace: what the W3C propagator injects, named
/// as the OpenTelemetry environment carrier names it, in that order, an empty trace state
/// left out. Empty when the span context is not valid.
///
/// Written here rather than by the propagator, whose `format!` and carrier cost about
/// 3,000 instructions at every instantiation; the tests hold it to the propagator's
/// output.
pub fn guest_env(span: &SpanContext) -> Vec<(&'static str, String)> {
    if !span.is_valid() {
        return Vec::new();
    }
    let mut env = Vec::with_capacity(2);
    let [traceparent_name, tracestate_name] = GUEST_ENV_NAMES;
    env.push((traceparent_name, traceparent(span)));
    let state = span.trace_state().header();
    if !state.is_empty() {
        env.push((tracestate_name, state));
    }
    env
}

/// `span`'s `traceparent` (version 00, the sampled flag only), as
/// [`opentelemetry_sdk::propagation::TraceContextPropagator`] writes it.
fn traceparent(span: &SpanContext) -> String {
    use crate::ids::push_hex as hex;
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    hex(&mut out, &span.trace_id().to_bytes());
    out.push('-');
    hex(&mut out, &span.span_id().to_bytes());
    out.push('-');
    let flags = span.trace_flags() & opentelemetry::trace::TraceFlags::SAMPLED;
    hex(&mut out, &[flags.to_u8()]);
    out
}

/// An incoming request's headers as the W3C Trace Context specification reads them: more
/// than one `traceparent` is ambiguous, so none is used (a new trace starts); several
/// `tracestate` headers are one list, joined with commas.
pub struct TraceHeaders<'a> {
    headers: &'a http::HeaderMap,
    joined_tracestate: Option<String>,
}

impl<'a> TraceHeaders<'a> {
    pub fn new(headers: &'a http::HeaderMap) -> Self {
        let mut states = headers.get_all(TRACESTATE).iter();
        let joined_tracestate = match (states.next(), states.next()) {
            (Some(_), Some(_)) => {
                let all = headers
                    .get_all(TRACESTATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                Some(all.collect::<Vec<_>>().join(","))
            }
            _ => None,
        };
        TraceHeaders {
            headers,
            joined_tracestate,
        }
    }
}

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
const BAGGAGE: http::HeaderName = http::HeaderName::from_static("baggage");

impl Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // The propagators ask for these on every request: a `HeaderName` is looked up
        // without parsing the key first.
        let value = match key {
            "traceparent" => {
                let mut all = self.headers.get_all(TRACEPARENT).into_iter();
                let first = all.next();
                if all.next().is_some() {
                    return None;
                }
                first
            }
            "tracestate" if self.joined_tracestate.is_some() => {
                return self.joined_tracestate.as_deref();
            }
            "tracestate" => self.headers.get(TRACESTATE),
            "baggage" => self.headers.get(BAGGAGE),
            _ => self.headers.get(key),
        };
        value?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(|k| k.as_str()).collect()
    }
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry_sdk::propagation::BaggagePropagator;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn extract(vars: &[(&str, &str)]) -> Context {
        let propagator = TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]);
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        extract_from_env(&propagator, |name| vars.get(name).cloned())
    }

    fn span_of(cx: &Context) -> (String, String) {
        let span = cx.span().span_context().clone();
        (span.trace_id().to_string(), span.span_id().to_string())
    }

    #[test]
    fn the_environment_carrier() {
        let cx = extract(&[
            ("TRACEPARENT", TRACEPARENT),
            ("TRACESTATE", "v=1"),
            ("BAGGAGE", "tenant=a"),
        ]);
        assert_eq!(
            span_of(&cx),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            )
        );
        assert_eq!(cx.span().span_context().trace_state().header(), "v=1");
        assert_eq!(
            cx.baggage().get("tenant").map(|v| v.to_string()),
            Some("a".into())
        );
    }

    #[test]
    fn the_containerd_shims_tracecontext_as_json_or_bare() {
        let json = format!(r#"{{"traceparent":"{TRACEPARENT}","tracestate":"v=2"}}"#);
        let cx = extract(&[("TRACECONTEXT", &json)]);
        assert_eq!(span_of(&cx).1, "00f067aa0ba902b7");
        assert_eq!(cx.span().span_context().trace_state().header(), "v=2");
        assert_eq!(
            span_of(&extract(&[("TRACECONTEXT", TRACEPARENT)])).1,
            "00f067aa0ba902b7"
        );
    }

    #[test]
    fn traceparent_wins_and_garbage_starts_a_new_trace() {
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        assert_eq!(
            span_of(&extract(&[
                ("TRACEPARENT", TRACEPARENT),
                ("TRACECONTEXT", other)
            ]))
            .1,
            "00f067aa0ba902b7"
        );
        for garbage in ["nonsense", "{\"traceparent\": 7}", "00-zz-zz-01"] {
            assert!(
                !extract(&[("TRACECONTEXT", garbage)])
                    .span()
                    .span_context()
                    .is_valid(),
                "{garbage}"
            );
        }
        assert!(!extract(&[]).has_active_span());
    }

    #[test]
    fn duplicate_traceparents_are_ambiguous_and_tracestates_are_one_list() {
        let propagator = TraceContextPropagator::new();
        let mut headers = http::HeaderMap::new();
        headers.append("traceparent", TRACEPARENT.parse().unwrap());
        headers.append("tracestate", "a=1".parse().unwrap());
        headers.append("tracestate", "b=2".parse().unwrap());
        let cx = propagator.extract(&TraceHeaders::new(&headers));
        assert_eq!(cx.span().span_context().trace_state().header(), "a=1,b=2");

        headers.append(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01"
                .parse()
                .unwrap(),
        );
        let cx = propagator.extract(&TraceHeaders::new(&headers));
        assert!(
            !cx.span().span_context().is_valid(),
            "two parents: a new trace"
        );
    }

    #[test]
    fn a_guest_gets_its_own_traceparent() {
        let cx = extract(&[("TRACEPARENT", TRACEPARENT), ("TRACESTATE", "v=1")]);
        assert_eq!(
            guest_env(cx.span().span_context()),
            [
                ("TRACEPARENT", TRACEPARENT.to_owned()),
                ("TRACESTATE", "v=1".to_owned())
            ]
        );
        assert!(guest_env(&SpanContext::empty_context()).is_empty());
    }

    /// What the W3C propagator injects for `span`, through the environment carrier.
    fn injected_by_the_propagator(span: &SpanContext) -> Vec<(String, String)> {
        struct EnvCarrier(Vec<(String, String)>);
        impl Injector for EnvCarrier {
            fn set(&mut self, key: &str, value: String) {
                if !value.is_empty() {
                    self.0.push((key.to_ascii_uppercase(), value));
                }
            }
        }
        let cx = Context::new().with_remote_span_context(span.clone());
        let mut env = EnvCarrier(Vec::new());
        TraceContextPropagator::new().inject_context(&cx, &mut env);
        env.0.sort_unstable();
        env.0
    }

    /// A header or variable a peer may send: a well-formed value, one nearly so, or
    /// anything at all.
    fn a_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
            "[0-9a-fA-FxX-]{0,60}",
            "([a-z0-9@_*/-]{1,8}=[ -~]{0,8},?){0,6}",
            any::<String>(),
        ]
    }

    proptest::proptest! {
        /// A guest's variables are what the propagator would inject, for any span
        /// context: any ids (the invalid all-zero ones included), flags and trace state.
        #[test]
        fn a_guests_variables_are_what_the_propagator_injects(
            trace_id in proptest::prop_oneof![proptest::prelude::Just(0u128), proptest::prelude::any::<u128>()],
            span_id in proptest::prop_oneof![proptest::prelude::Just(0u64), proptest::prelude::any::<u64>()],
            flags in proptest::prelude::any::<u8>(),
            remote in proptest::prelude::any::<bool>(),
            state in proptest::collection::vec(("[a-z][a-z0-9_*/-]{0,8}(@[a-z][a-z0-9_*/-]{0,4})?", "[!-+--<>-~]{1,12}"), 0..5),
        ) {
            let state = opentelemetry::trace::TraceState::from_key_value(state)
                .unwrap_or_default();
            let span = SpanContext::new(
                opentelemetry::trace::TraceId::from(trace_id),
                opentelemetry::trace::SpanId::from(span_id),
                opentelemetry::trace::TraceFlags::new(flags),
                remote,
                state,
            );
            let ours: Vec<_> = guest_env(&span)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            proptest::prop_assert_eq!(ours, injected_by_the_propagator(&span));
        }

        /// Whatever trace context a process is started with, reading it never fails: a
        /// context is valid only if its traceparent is one; anything else starts a trace.
        #[test]
        fn any_environment_carrier_is_read_or_starts_a_new_trace(
            traceparent in proptest::option::of(a_value()),
            tracestate in proptest::option::of(a_value()),
            baggage in proptest::option::of(a_value()),
            tracecontext in proptest::option::of(a_value()),
        ) {
            let env = [
                ("TRACEPARENT", traceparent.clone()),
                ("TRACESTATE", tracestate),
                ("BAGGAGE", baggage),
                ("TRACECONTEXT", tracecontext),
            ];
            let propagator = TraceContextPropagator::new();
            let cx = extract_from_env(&propagator, |name| {
                env.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone())
            });
            let context = cx.span().span_context().clone();
            if context.is_valid()
                && let Some(traceparent) = traceparent.filter(|v| !v.trim().is_empty())
            {
                proptest::prop_assert!(
                    traceparent.contains(&context.trace_id().to_string()),
                    "{traceparent} gave {context:?}"
                );
            }
        }

        /// Whatever trace headers a request carries (several of each included), reading
        /// them never fails.
        #[test]
        fn any_request_headers_are_read_or_start_a_new_trace(
            values in proptest::collection::vec((0..3usize, a_value()), 0..6)
        ) {
            let mut headers = http::HeaderMap::new();
            for (which, value) in values {
                let name = ["traceparent", "tracestate", "baggage"][which];
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.append(name, value);
                }
            }
            let cx = TraceContextPropagator::new().extract(&TraceHeaders::new(&headers));
            let _ = cx.span().span_context().is_valid();
        }
    }
}
