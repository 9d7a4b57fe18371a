//! Every name of the telemetry contract, defined once. Instrumentation uses these
//! constants; `docs/telemetry.md` documents them, and the contract test holds the two
//! together. Standard OpenTelemetry keys come from `opentelemetry-semantic-conventions`.

/// Span names (PascalCase: they name domain concepts).
pub mod span {
    pub const WORKLOAD_START: &str = "WorkloadStart";
    pub const WORKLOAD_STOP: &str = "WorkloadStop";
    pub const WORKLOAD_STATE_CHANGE: &str = "WorkloadStateChange";
    pub const HTTP_REQUEST: &str = "HttpRequest";
    pub const HTTP_RESPONSE: &str = "HttpResponse";
    pub const COMPONENT_INSTANTIATION: &str = "ComponentInstantiation";
    pub const COMPONENT_INVOCATION: &str = "ComponentInvocation";
    pub const OUTGOING_HTTP_REQUEST: &str = "OutgoingHttpRequest";
    pub const PLUGIN_BIND: &str = "PluginBind";
    pub const PLUGIN_OPERATION: &str = "PluginOperation";
}

/// Event names: span events that are also exported as log records.
pub mod event {
    /// A guest failed (`error.type` says how); at ERROR.
    pub const COMPONENT_FAILED: &str = "component failed";
    /// A workload could not start (`error.type` says why); at ERROR.
    pub const WORKLOAD_FAILED: &str = "workload failed";
    pub const APPROACHING_MEMORY_LIMIT: &str = "component approaching memory limit";
    pub const APPROACHING_FUEL_BUDGET: &str = "component approaching fuel budget";
    pub const WORKLOAD_STATE_TRANSITION: &str = "workload state transition";
    /// A host plugin could not be bound, or one of its operations failed (`error.type`
    /// says which); at ERROR.
    pub const PLUGIN_FAILED: &str = "plugin failed";
}

/// Attribute keys.
pub mod attr {
    pub use opentelemetry_semantic_conventions::attribute::{
        CLIENT_ADDRESS, CPU_MODE, DB_NAMESPACE, DB_OPERATION_NAME, DB_SYSTEM_NAME,
        DISK_IO_DIRECTION, ERROR_TYPE, FAAS_COLDSTART, FAAS_INVOCATION_ID, FAAS_TRIGGER,
        HTTP_REQUEST_METHOD, HTTP_RESPONSE_BODY_SIZE, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE,
        LOG_IOSTREAM, NETWORK_INTERFACE_NAME, NETWORK_IO_DIRECTION, NETWORK_PROTOCOL_VERSION,
        SERVER_ADDRESS, SERVER_PORT, SYSTEM_DEVICE, SYSTEM_MEMORY_STATE, URL_FULL, URL_PATH,
        URL_SCHEME, USER_AGENT_ORIGINAL,
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
    /// The export `wasmtime.execution.duration` measures.
    pub const OPERATION: &str = "operation";

    /// An invocation's resource summary, on `ComponentInvocation`.
    pub const FUEL_CONSUMED: &str = "wasmtime.fuel.consumed";
    pub const MEMORY_PEAK_BYTES: &str = "wasmtime.memory.peak_bytes";
    pub const DURATION_MS: &str = "duration_ms";

    /// The 80 % warnings.
    pub const CURRENT_MEMORY: &str = "current_memory";
    pub const MEMORY_LIMIT: &str = "memory_limit";
    pub const FUEL_LIMIT: &str = "fuel_limit";
    pub const UTILIZATION_PCT: &str = "utilization_pct";

    /// The workload lifecycle.
    pub const WORKLOAD_ID: &str = "workload_id";
    pub const WORKLOAD_NAME: &str = "workload.name";
    pub const TRIGGER_TYPE: &str = "trigger_type";
    pub const PREVIOUS_STATE: &str = "previous_state";
    pub const NEW_STATE: &str = "new_state";
    pub const SHUTDOWN_REASON: &str = "shutdown_reason";
    pub const SHUTDOWN_DURATION_MS: &str = "shutdown_duration_ms";

    /// Host plugins.
    pub const PLUGIN_TYPE: &str = "plugin_type";
    /// The WIT package a plugin is bound for, e.g. `wasi:keyvalue@0.2.0-draft`.
    pub const INTERFACE: &str = "interface";
    /// Whether a plugin operation succeeded, on `PluginOperation`.
    pub const SUCCESS: &str = "success";
    /// `success` or `error`, on `plugin.operations`.
    pub const STATUS: &str = "status";
    /// What serves a plugin's operations: `memory`, `file`, `redis`.
    pub const PLUGIN_BACKEND: &str = "plugin_backend";
    /// The key-value store a `PluginOperation` used (`""` is the default store).
    pub const KEYVALUE_STORE: &str = "keyvalue_store";
    /// Which kind of telemetry (`traces`, `metrics`, `logs`).
    pub const SIGNAL: &str = "signal";
    /// The `context` a guest gave a wasi:logging call.
    pub const LOG_CONTEXT: &str = "log_context";

    /// Keys of the old HTTP conventions, emitted beside the stable ones under
    /// `OTEL_SEMCONV_STABILITY_OPT_IN=http/dup`.
    pub mod old_http {
        pub const METHOD: &str = "http.method";
        pub const HOST: &str = "http.host";
        pub const STATUS_CODE: &str = "http.status_code";
        pub const TARGET: &str = "http.target";
    }
}

/// Metric names.
pub mod metric {
    pub use opentelemetry_semantic_conventions::metric::{
        HTTP_CLIENT_REQUEST_DURATION, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
        SYSTEM_CPU_LOGICAL_COUNT, SYSTEM_CPU_TIME, SYSTEM_CPU_UTILIZATION, SYSTEM_DISK_IO,
        SYSTEM_DISK_OPERATIONS, SYSTEM_MEMORY_LIMIT, SYSTEM_MEMORY_USAGE,
        SYSTEM_MEMORY_UTILIZATION, SYSTEM_NETWORK_ERRORS, SYSTEM_NETWORK_IO,
    };
    /// The contract's name; the conventions have since renamed it `system.network.packet.count`.
    pub const SYSTEM_NETWORK_PACKETS: &str = "system.network.packets";

    pub const FUEL_CONSUMED: &str = "wasmtime.fuel.consumed";
    pub const FUEL_REMAINING: &str = "wasmtime.fuel.remaining";
    pub const MEMORY_USAGE: &str = "wasmtime.memory.usage";
    pub const MEMORY_PEAK: &str = "wasmtime.memory.peak";
    pub const MEMORY_LIMIT: &str = "wasmtime.memory.limit";
    pub const EXECUTION_DURATION: &str = "wasmtime.execution.duration";
    pub const INSTANTIATION_DURATION: &str = "wasmtime.instantiation.duration";
    pub const INSTANCES_ACTIVE: &str = "wasmtime.instances.active";
    pub const INSTANCES_CREATED: &str = "wasmtime.instances.created";

    pub const WORKLOAD_STATE_TRANSITIONS: &str = "workload.state_transitions";
    pub const WORKLOADS_ACTIVE: &str = "workloads.active";
    pub const COMPONENTS_ACTIVE: &str = "components.active";

    pub const COMPONENT_INVOCATIONS: &str = "component.invocations";
    pub const COMPONENT_INVOCATION_DURATION: &str = "component.invocation.duration";
    pub const COMPONENT_INSTANTIATION_DURATION: &str = "component.instantiation.duration";

    pub const HTTP_REQUESTS: &str = "http.requests";

    pub const PLUGIN_OPERATIONS: &str = "plugin.operations";
    pub const GUEST_TELEMETRY_DROPPED: &str = "guest.telemetry.dropped";

    pub const HOST_MEMORY_USED: &str = "host.memory.used";
    pub const HOST_CPU_UTILIZATION: &str = "host.cpu.utilization";
}

/// Values of `faas.trigger`.
pub mod trigger {
    pub const HTTP: &str = "http";
    /// A CLI run is an invocation nobody outside the process triggered.
    pub const CLI: &str = "other";
}

/// Values of `trigger_type` on `WorkloadStart`.
pub mod trigger_type {
    pub const HTTP: &str = "http";
    pub const CLI: &str = "cli";
    /// A workload with HTTP routes and commands.
    pub const HTTP_AND_CLI: &str = "http,cli";
    /// A workload refused before its components were known.
    pub const UNKNOWN: &str = "unknown";
}

/// Values of `function_name` and `operation`: the export an invocation calls.
pub mod function {
    pub const HTTP_HANDLE: &str = "wasi:http/incoming-handler.handle";
    pub const CLI_RUN: &str = "wasi:cli/run.run";
}

/// Values of `error.type` for the host's own failures (a failed HTTP answer's is its
/// status code, and a failed outgoing request's is wasi:http's error code).
pub mod error_type {
    /// A guest trapped.
    pub const COMPONENT_TRAP: &str = "ComponentTrap";
    /// A guest used up its fuel.
    pub const FUEL_EXHAUSTED: &str = "FuelExhausted";
    /// A guest ran past its timeout.
    pub const TIMEOUT: &str = "Timeout";
    /// A guest grew its memory past its limit.
    pub const MEMORY_LIMIT_EXCEEDED: &str = "MemoryLimitExceeded";
    /// A component could not be instantiated.
    pub const INSTANTIATION_FAILURE: &str = "InstantiationFailure";
    /// A workload's manifest or component was refused before anything ran.
    pub const VALIDATION_ERROR: &str = "ValidationError";
    /// A workload's listener could not be bound.
    pub const LISTEN_FAILURE: &str = "ListenFailure";
    /// A host plugin could not be bound to a component (its backend cannot be opened or
    /// reached): the workload is refused.
    pub const PLUGIN_BIND_FAILURE: &str = "PluginBindFailure";
    /// A host plugin's backend failed an operation; the guest got the interface's error.
    pub const PLUGIN_OPERATION_FAILURE: &str = "PluginOperationFailure";
    /// A request shed because every slot and the queue were taken (503).
    pub const QUEUE_FULL: &str = "QueueFull";
    /// A request shed because it waited in the queue too long (503).
    pub const QUEUE_TIMEOUT: &str = "QueueTimeout";
    /// A guest's outgoing request to a host it may not reach.
    pub const HTTP_REQUEST_DENIED: &str = "HTTP-request-denied";
}

/// Values of `previous_state` and `new_state`: the states of a workload.
pub mod workload_state {
    pub const PENDING: &str = "pending";
    pub const STARTING: &str = "starting";
    pub const RUNNING: &str = "running";
    pub const STOPPING: &str = "stopping";
    pub const STOPPED: &str = "stopped";
    pub const FAILED: &str = "failed";
}

/// Values of `shutdown_reason`: why a workload stopped.
pub mod shutdown_reason {
    pub const SIGINT: &str = "SIGINT";
    pub const SIGTERM: &str = "SIGTERM";
    /// Its commands finished and it serves nothing.
    pub const COMPLETED: &str = "completed";
    /// It failed while running.
    pub const FAILED: &str = "failed";
}

/// Values of `url.scheme`.
pub mod url_scheme {
    pub const HTTP: &str = "http";
}

/// Values of `plugin_type`.
pub mod plugin_type {
    pub const KEYVALUE: &str = "keyvalue";
    pub const CONFIG: &str = "config";
    pub const LOGGING: &str = "logging";
    pub const OTEL: &str = "otel";
}

/// Values of `signal` on `guest.telemetry.dropped`.
pub mod signal {
    pub const TRACES: &str = "traces";
    pub const METRICS: &str = "metrics";
    pub const LOGS: &str = "logs";
}

/// Values of `status` on `plugin.operations`.
pub mod plugin_status {
    pub const SUCCESS: &str = "success";
    pub const ERROR: &str = "error";
}

/// Values of `outcome`.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const ERROR: &str = "error";
}

/// `http.route` of the requests a component serving the path prefix `prefix` answers:
/// `/api/*` for `/api` (or `/api/`), `/*` for `/`.
pub fn http_route(prefix: &str) -> String {
    format!("{}/*", prefix.trim_end_matches('/'))
}
