//! The configuration plugin: wasi:config@0.2.0-rc.1 (`get`, `get-all`) answered from the
//! values a component is given (`--config KEY=VALUE`, a manifest's `[component.config]`
//! table). A key it was not given is `none`, not an error. Each call is a
//! `PluginOperation` span; no value is ever recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use wasmlens_engine::{Capability, ComponentContext, InstanceContext, Plugin};
use wasmlens_telemetry::names::{attr, plugin_type};
use wasmlens_telemetry::plugin::PluginTelemetry;
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasmlens:config/bindings",
    });
}

use bindings::wasi::config::store;

/// The WIT package this plugin serves.
pub const PACKAGE: &str = "wasi:config@0.2.0-rc.1";

/// A component's configuration: keys and their values.
pub type ConfigValues = BTreeMap<String, String>;

/// Reads one `--config KEY=VALUE`.
pub fn parse_config_flag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// The capability. It holds nothing itself: the values are per component.
#[derive(Debug, Default)]
pub struct Config;

/// A component's values, with the telemetry of its calls.
pub struct ConfigGrant {
    values: ConfigValues,
    telemetry: PluginTelemetry,
}

/// What one instance holds: its component's values (none if it does not import
/// wasi:config).
#[derive(Default)]
pub struct ConfigState {
    grant: Option<Arc<ConfigGrant>>,
}

/// How the plugin reaches its state in a store: the host's store type implements it.
pub trait ConfigView: Send {
    fn config(&mut self) -> ConfigCtxView<'_>;
}

/// The plugin's part of one instance's store.
pub struct ConfigCtxView<'a>(pub &'a ConfigState);

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = ConfigCtxView<'a>;
}

const GET: &str = "get";
const GET_ALL: &str = "get-all";

impl<T: ConfigView + 'static> Capability<T> for Config {
    const PLUGIN: Option<Plugin> = Some(Plugin {
        plugin_type: plugin_type::CONFIG,
        package: PACKAGE,
    });
    type Config = ConfigValues;
    type Bound = Arc<ConfigGrant>;
    type InstanceState = ConfigState;

    fn link(&self, linker: &mut Linker<T>) -> anyhow::Result<()> {
        store::add_to_linker::<T, HasConfig>(linker, T::config)?;
        Ok(())
    }

    async fn bind(
        &self,
        values: &ConfigValues,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Arc<ConfigGrant>> {
        let backend = vec![opentelemetry::KeyValue::new(attr::PLUGIN_BACKEND, "static")];
        let telemetry = PluginTelemetry::new(
            component.telemetry,
            plugin_type::CONFIG,
            component.id,
            &[GET, GET_ALL],
            backend,
        );
        Ok(Arc::new(ConfigGrant {
            values: values.clone(),
            telemetry,
        }))
    }

    fn instance_state(
        &self,
        grant: &Arc<ConfigGrant>,
        _: &InstanceContext<'_>,
    ) -> anyhow::Result<ConfigState> {
        Ok(ConfigState {
            grant: Some(grant.clone()),
        })
    }
}

impl store::Host for ConfigCtxView<'_> {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        let Some(grant) = &self.0.grant else {
            return Ok(None);
        };
        grant.telemetry.start(GET, None).succeeded();
        Ok(grant.values.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        let Some(grant) = &self.0.grant else {
            return Ok(Vec::new());
        };
        grant.telemetry.start(GET_ALL, None).succeeded();
        let values = grant.values.iter();
        Ok(values.map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_config_flag;

    #[test]
    fn config_flags_are_key_equals_value() {
        assert_eq!(
            parse_config_flag("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(
            parse_config_flag("empty=").unwrap(),
            ("empty".into(), "".into())
        );
        assert!(parse_config_flag("=x").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_config_flag("novalue").is_err());
    }
}
