//! The logging plugin: each wasi:logging@0.1.0-draft `log` call becomes a log record at
//! the matching severity (`critical` is FATAL), carrying the invocation's trace and span
//! id, the guest's `context` string (`log_context`) and `component_id`, and is written to
//! the local log as the host's own lines are. The record is the call's telemetry: a span
//! for each line would double it, so a call is only counted in `plugin.operations`.

use opentelemetry::logs::Severity;
use std::sync::Arc;
use wasmlens_engine::{Capability, ComponentContext, InstanceContext, Plugin};
use wasmlens_telemetry::names::plugin_type;
use wasmlens_telemetry::plugin::PluginTelemetry;
use wasmlens_telemetry::{Telemetry, guest_logged};
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:logging/imports",
    });
}

use bindings::wasi::logging::logging::{self, Level};

/// The WIT package this plugin serves.
pub const PACKAGE: &str = "wasi:logging@0.1.0-draft";

const LOG: &str = "log";

/// The capability. It needs no configuration.
#[derive(Debug, Default)]
pub struct Logging;

/// Where a component's records go.
pub struct LoggingGrant {
    component_id: Arc<str>,
    telemetry: Arc<Telemetry>,
    counted: PluginTelemetry,
}

/// What one instance holds (nothing if it does not import wasi:logging).
#[derive(Default)]
pub struct LoggingState {
    grant: Option<Arc<LoggingGrant>>,
}

/// How the plugin reaches its state in a store: the host's store type implements it.
pub trait LoggingView: Send {
    fn logging(&mut self) -> LoggingCtxView<'_>;
}

/// The plugin's part of one instance's store.
pub struct LoggingCtxView<'a>(pub &'a LoggingState);

struct HasLogging;

impl HasData for HasLogging {
    type Data<'a> = LoggingCtxView<'a>;
}

impl<T: LoggingView + 'static> Capability<T> for Logging {
    const PLUGIN: Option<Plugin> = Some(Plugin {
        plugin_type: plugin_type::LOGGING,
        package: PACKAGE,
    });
    type Config = ();
    type Bound = Arc<LoggingGrant>;
    type InstanceState = LoggingState;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        logging::add_to_linker::<T, HasLogging>(linker, T::logging)?;
        Ok(())
    }

    async fn bind(
        &self,
        _: &(),
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Arc<LoggingGrant>> {
        let counted = PluginTelemetry::new(
            component.telemetry,
            plugin_type::LOGGING,
            component.id,
            &[LOG],
            Vec::new(),
        );
        Ok(Arc::new(LoggingGrant {
            component_id: component.id.clone(),
            telemetry: component.telemetry.clone(),
            counted,
        }))
    }

    fn instance_state(
        &self,
        grant: &Arc<LoggingGrant>,
        _: &InstanceContext<'_>,
    ) -> anyhow::Result<LoggingState> {
        Ok(LoggingState {
            grant: Some(grant.clone()),
        })
    }
}

/// The severity a wasi:logging level is recorded at.
fn severity(level: Level) -> Severity {
    match level {
        Level::Trace => Severity::Trace,
        Level::Debug => Severity::Debug,
        Level::Info => Severity::Info,
        Level::Warn => Severity::Warn,
        Level::Error => Severity::Error,
        Level::Critical => Severity::Fatal,
    }
}

impl logging::Host for LoggingCtxView<'_> {
    fn log(&mut self, level: Level, context: String, message: String) {
        let Some(grant) = &self.0.grant else {
            return;
        };
        grant.counted.count(LOG, true);
        let logger = grant.telemetry.logger();
        guest_logged(
            logger,
            &grant.component_id,
            severity(level),
            &context,
            &message,
        );
    }
}
