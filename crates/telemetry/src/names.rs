//! Every name of the telemetry contract, defined once. Instrumentation uses these
//! constants; `docs/telemetry.md` documents them, and the contract test holds the two
//! together. Standard OpenTelemetry keys come from `opentelemetry-semantic-conventions`.

/// Span names (PascalCase: they name domain concepts).
pub mod span {
    pub const HTTP_REQUEST: &str = "HttpRequest";
    pub const COMPONENT_INSTANTIATION: &str = "ComponentInstantiation";
    pub const COMPONENT_INVOCATION: &str = "ComponentInvocation";
    pub const OUTGOING_HTTP_REQUEST: &str = "OutgoingHttpRequest";
}

/// Attribute keys.
pub mod attr {
    pub use opentelemetry_semantic_conventions::attribute::{
        CLIENT_ADDRESS, ERROR_TYPE, FAAS_COLDSTART, FAAS_INVOCATION_ID, FAAS_TRIGGER,
        HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, LOG_IOSTREAM,
        NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT, URL_FULL, URL_PATH, URL_SCHEME,
        USER_AGENT_ORIGINAL,
    };

    /// The component's id within its workload (the file stem for `run` and `serve`).
    pub const COMPONENT_ID: &str = "component_id";
    /// The export a `ComponentInvocation` calls, e.g. `wasi:http/incoming-handler.handle`.
    pub const FUNCTION_NAME: &str = "function_name";
    pub const IS_COLDSTART: &str = "is_coldstart";
    pub const OUTCOME: &str = "outcome";
    pub const WASMTIME_COMPONENT_ID: &str = "wasmtime.component.id";
    pub const WASMTIME_COMPONENT_NAME: &str = "wasmtime.component.name";
    pub const ERROR_MESSAGE: &str = "error.message";

    /// Keys of the old HTTP conventions, emitted beside the stable ones under
    /// `OTEL_SEMCONV_STABILITY_OPT_IN=http/dup`.
    pub mod old_http {
        pub const METHOD: &str = "http.method";
        pub const HOST: &str = "http.host";
        pub const STATUS_CODE: &str = "http.status_code";
        pub const TARGET: &str = "http.target";
    }
}

/// Metric names and units (UCUM).
pub mod metric {
    pub use opentelemetry_semantic_conventions::metric::{
        HTTP_CLIENT_REQUEST_DURATION, HTTP_SERVER_REQUEST_DURATION,
    };
    pub const COMPONENT_INVOCATIONS: &str = "component.invocations";
}

/// Values of `faas.trigger`.
pub mod trigger {
    pub const HTTP: &str = "http";
    /// A CLI run is an invocation nobody outside the process triggered.
    pub const CLI: &str = "other";
}

/// Values of `outcome`.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const ERROR: &str = "error";
}
