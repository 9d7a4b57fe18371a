//! The metric instruments of the contract, created once per pipeline, and what their
//! observable gauges read at export time.

use crate::names::{attr, metric};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bucket boundaries (seconds) for request and invocation durations: a wasm request is
/// served in tens of microseconds to seconds, so the buckets start at 50 µs rather than
/// at the 5 ms where the semantic conventions' advice starts.
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Bucket boundaries (seconds) for instantiation: a pre-instantiated component is ready
/// in microseconds; a big interpreter-based one takes milliseconds.
pub const INSTANTIATION_DURATION_BUCKETS: &[f64] = &[
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What the observable gauges know of one loaded component. The engine keeps it up to
/// date as instances grow their memories and go away; it is read only at export time.
#[derive(Debug)]
pub struct ComponentGauges {
    attrs: [KeyValue; 1],
    /// Linear memory held by the component's live instances, in bytes.
    pub memory_in_use: AtomicU64,
    /// The most linear memory one instance of the component has held, in bytes.
    pub memory_peak: AtomicU64,
    /// Each instance's memory limit, if it has one.
    memory_limit: Option<u64>,
    /// Cleared when the component is unloaded (see [`ComponentGauges::unloaded`]).
    loaded: AtomicBool,
}

impl ComponentGauges {
    /// Adds `grown` bytes to the memory in use, and raises the peak to `instance_total`.
    pub fn memory_grown(&self, grown: u64, instance_total: u64) {
        self.memory_in_use.fetch_add(grown, Ordering::Relaxed);
        self.memory_peak
            .fetch_max(instance_total, Ordering::Relaxed);
    }

    /// An instance holding `bytes` went away.
    pub fn memory_released(&self, bytes: u64) {
        self.memory_in_use.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The component is no longer loaded: it leaves `components.active`. Its memory
    /// gauges stay, so that the last export (at shutdown) still reports its peak.
    pub fn unloaded(&self) {
        self.loaded.store(false, Ordering::Relaxed);
    }
}

/// The components the process has loaded, for the gauges that read them. A process
/// loads its workload's components once, so the list only grows by that many.
#[derive(Default)]
struct Components(Mutex<Vec<Arc<ComponentGauges>>>);

impl Components {
    fn each(&self, mut f: impl FnMut(&ComponentGauges)) {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().for_each(|gauges| f(gauges));
    }
}

pub struct Instruments {
    pub http_server_request_duration: Histogram<f64>,
    pub http_server_active_requests: UpDownCounter<i64>,
    pub http_requests: Counter<u64>,
    pub http_client_request_duration: Histogram<f64>,
    pub component_invocations: Counter<u64>,
    pub component_invocation_duration: Histogram<f64>,
    pub component_instantiation_duration: Histogram<f64>,
    pub execution_duration: Histogram<f64>,
    pub instantiation_duration: Histogram<f64>,
    pub instances_created: Counter<u64>,
    pub instances_active: UpDownCounter<i64>,
    pub fuel_consumed: Counter<u64>,
    pub fuel_remaining: Gauge<u64>,
    pub workload_state_transitions: Counter<u64>,
    pub plugin_operations: Counter<u64>,
    pub guest_telemetry_dropped: Counter<u64>,
    workloads_active: Arc<AtomicI64>,
    components: Arc<Components>,
}

impl Instruments {
    /// Creates the instruments on `meter`. The observable gauges are registered only
    /// where metrics go somewhere (`observe`; the SDK refuses them otherwise).
    pub(crate) fn new(meter: &opentelemetry::metrics::Meter, observe: bool) -> Self {
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        let components = Arc::new(Components::default());
        let workloads_active = Arc::new(AtomicI64::new(0));
        let memory_gauge = |name: &'static str,
                            description: &'static str,
                            read: fn(&ComponentGauges) -> Option<u64>| {
            let components = components.clone();
            meter
                .u64_observable_gauge(name)
                .with_unit("By")
                .with_description(description)
                .with_callback(move |observer| {
                    components.each(|c| {
                        if let Some(value) = read(c) {
                            observer.observe(value, &c.attrs);
                        }
                    });
                })
                .build();
        };
        if observe {
            memory_gauge(
                metric::MEMORY_USAGE,
                "Linear memory held by the component's live instances",
                |c| Some(c.memory_in_use.load(Ordering::Relaxed)),
            );
            memory_gauge(
                metric::MEMORY_PEAK,
                "The most linear memory one instance of the component has held",
                |c| Some(c.memory_peak.load(Ordering::Relaxed)),
            );
            memory_gauge(
                metric::MEMORY_LIMIT,
                "Linear memory each instance of the component may hold",
                |c| c.memory_limit,
            );
            {
                let components = components.clone();
                meter
                    .u64_observable_gauge(metric::COMPONENTS_ACTIVE)
                    .with_unit("{component}")
                    .with_description("Components loaded and ready to be invoked")
                    .with_callback(move |observer| {
                        let mut count = 0;
                        components.each(|c| count += u64::from(c.loaded.load(Ordering::Relaxed)));
                        observer.observe(count, &[]);
                    })
                    .build();
            }
            {
                let workloads = workloads_active.clone();
                meter
                    .i64_observable_gauge(metric::WORKLOADS_ACTIVE)
                    .with_unit("{workload}")
                    .with_description("Workloads running")
                    .with_callback(move |observer| {
                        observer.observe(workloads.load(Ordering::Relaxed), &[]);
                    })
                    .build();
            }
        }
        Instruments {
            http_server_request_duration: seconds(
                metric::HTTP_SERVER_REQUEST_DURATION,
                "Duration of HTTP server requests, until the response body is sent",
                REQUEST_DURATION_BUCKETS,
            ),
            http_server_active_requests: meter
                .i64_up_down_counter(metric::HTTP_SERVER_ACTIVE_REQUESTS)
                .with_unit("{request}")
                .with_description("HTTP requests being served")
                .build(),
            http_requests: meter
                .u64_counter(metric::HTTP_REQUESTS)
                .with_unit("{request}")
                .with_description("HTTP requests answered, by route and status")
                .build(),
            http_client_request_duration: seconds(
                metric::HTTP_CLIENT_REQUEST_DURATION,
                "Duration of a guest's outgoing HTTP requests, until the response headers arrive",
                REQUEST_DURATION_BUCKETS,
            ),
            guest_telemetry_dropped: meter
                .u64_counter(metric::GUEST_TELEMETRY_DROPPED)
                .with_unit("{item}")
                .with_description("Spans, log records and metric points a guest sent through wasi:otel past its invocation's caps, or invalid, and dropped")
                .build(),
            plugin_operations: meter
                .u64_counter(metric::PLUGIN_OPERATIONS)
                .with_unit("{operation}")
                .with_description("Calls into host plugins, by plugin, operation and status")
                .build(),
            component_invocations: meter
                .u64_counter(metric::COMPONENT_INVOCATIONS)
                .with_unit("{invocation}")
                .with_description("Calls into a component export, by outcome")
                .build(),
            component_invocation_duration: seconds(
                metric::COMPONENT_INVOCATION_DURATION,
                "Duration of calls into a component export",
                REQUEST_DURATION_BUCKETS,
            ),
            component_instantiation_duration: seconds(
                metric::COMPONENT_INSTANTIATION_DURATION,
                "Time to create a component instance, cold (first in the process) or warm",
                INSTANTIATION_DURATION_BUCKETS,
            ),
            execution_duration: seconds(
                metric::EXECUTION_DURATION,
                "Time spent running an export of a component",
                REQUEST_DURATION_BUCKETS,
            ),
            instantiation_duration: seconds(
                metric::INSTANTIATION_DURATION,
                "Time wasmtime takes to instantiate a component",
                INSTANTIATION_DURATION_BUCKETS,
            ),
            instances_created: meter
                .u64_counter(metric::INSTANCES_CREATED)
                .with_unit("{instance}")
                .with_description("Component instances created")
                .build(),
            instances_active: meter
                .i64_up_down_counter(metric::INSTANCES_ACTIVE)
                .with_unit("{instance}")
                .with_description("Component instances alive now")
                .build(),
            fuel_consumed: meter
                .u64_counter(metric::FUEL_CONSUMED)
                .with_unit("{instruction}")
                .with_description(
                    "Fuel consumed by invocations (about one unit per wasm instruction)",
                )
                .build(),
            fuel_remaining: meter
                .u64_gauge(metric::FUEL_REMAINING)
                .with_unit("{instruction}")
                .with_description("Fuel left of its budget when the last invocation ended")
                .build(),
            workload_state_transitions: meter
                .u64_counter(metric::WORKLOAD_STATE_TRANSITIONS)
                .with_unit("{transition}")
                .with_description("Workload state changes, by previous and new state")
                .build(),
            workloads_active,
            components,
        }
    }

    /// Registers a loaded component with the memory gauges and `components.active`; it
    /// counts as active until [`ComponentGauges::unloaded`].
    pub fn register_component(&self, id: &str, memory_limit: Option<u64>) -> Arc<ComponentGauges> {
        let gauges = Arc::new(ComponentGauges {
            attrs: [KeyValue::new(attr::WASMTIME_COMPONENT_ID, id.to_owned())],
            memory_in_use: AtomicU64::new(0),
            memory_peak: AtomicU64::new(0),
            memory_limit,
            loaded: AtomicBool::new(true),
        });
        let mut list = self.components.0.lock().unwrap_or_else(|e| e.into_inner());
        list.push(gauges.clone());
        gauges
    }

    /// A workload began (`1`) or stopped (`-1`) running.
    pub fn workloads_running(&self, change: i64) {
        self.workloads_active.fetch_add(change, Ordering::Relaxed);
    }
}
