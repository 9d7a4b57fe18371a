//! The `wasmlens.toml` manifest: read, checked, and resolved into a [`WorkloadSpec`].
//! Relative paths resolve against the manifest's folder; a mistake is refused with the
//! file, line and column where they are known, and the component it concerns.
//!
//! Each capability's settings for a component are the capability's own types
//! (`WasiConfig`, `OutboundPolicy`), read here from the component's table; a capability
//! with settings of its own gets a table `[component.<capability>]` of its config type.

use crate::spec::{ComponentSpec, Trigger, WorkloadSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasmlens_engine::{Limits, PoolMemory, parse_bytes, parse_duration};
use wasmlens_host::Grants;
use wasmlens_http::ServeOptions;
use wasmlens_keyvalue::{KeyValueConfig, StoreBackend};
use wasmlens_outbound_http::{HostPattern, OutboundPolicy};
use wasmlens_wasi::{Preopen, WasiConfig};

/// The file as written. Unknown keys are refused, so a typo does not silently do nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    workload: WorkloadTable,
    #[serde(rename = "component", default)]
    components: Vec<ComponentTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadTable {
    id: Option<String>,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentTable {
    id: String,
    source: PathBuf,
    route: Option<String>,
    args: Option<Vec<String>>,
    fuel: Option<u64>,
    max_memory: Option<Size>,
    timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    propagate_to: Option<Vec<String>>,
    /// `[component.keyvalue]`: store names to backends.
    #[serde(default)]
    keyvalue: BTreeMap<String, String>,
    /// `[component.config]`: what wasi:config answers.
    #[serde(default)]
    config: BTreeMap<String, ConfigValue>,
}

/// A configuration value: a string, or a number or boolean taken as its text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl ConfigValue {
    fn into_text(self) -> String {
        match self {
            ConfigValue::Text(text) => text,
            ConfigValue::Integer(n) => n.to_string(),
            ConfigValue::Float(x) => x.to_string(),
            ConfigValue::Boolean(b) => b.to_string(),
        }
    }
}

/// A size as a number of bytes or a string such as "64MiB".
#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// Reads and checks the manifest at `path`. Errors name the file, and for a syntax or
/// type error the line and column, and say what was expected. Its HTTP components are
/// served with the default [`ServeOptions`], which the caller may change.
pub fn load(path: &Path) -> anyhow::Result<WorkloadSpec> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut spec =
        parse(&text, folder).map_err(|err| anyhow::anyhow!("{}:{err}", path.display()))?;
    spec.manifest = Some(path.to_owned());
    Ok(spec)
}

/// Parses manifest text; relative paths resolve against `folder`. An error's text starts
/// with `LINE:COLUMN: ` where the position is known. The spec names no manifest file:
/// [`load`] does.
pub fn parse(text: &str, folder: &Path) -> Result<WorkloadSpec, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|err| {
        let message = err.message().trim_end().to_owned();
        match err.span() {
            Some(span) => {
                let (line, column) = position(text, span.start);
                format!("{line}:{column}: {message}")
            }
            None => format!(" {message}"),
        }
    })?;
    // Errors below concern a component; name it rather than guess a position.
    let mut components = Vec::with_capacity(manifest.components.len());
    for table in manifest.components {
        let id = table.id.clone();
        let component =
            resolve(table, folder).map_err(|err| format!(" component {id:?}: {err}"))?;
        components.push(component);
    }
    if components.is_empty() {
        return Err(" a workload needs at least one [[component]]".to_owned());
    }
    for (i, a) in components.iter().enumerate() {
        for b in &components[i + 1..] {
            if a.id == b.id {
                return Err(format!(" two components have the id {:?}", a.id));
            }
            if let (Trigger::Http { route: ra }, Trigger::Http { route: rb }) =
                (&a.trigger, &b.trigger)
                && ra == rb
            {
                return Err(format!(
                    " components {:?} and {:?} both serve {ra:?}",
                    a.id, b.id
                ));
            }
        }
    }
    Ok(WorkloadSpec {
        id: manifest
            .workload
            .id
            .unwrap_or_else(|| manifest.workload.name.clone()),
        name: manifest.workload.name,
        manifest: None,
        components,
        server: ServeOptions::default(),
        pool_memory: PoolMemory::default(),
    })
}

fn resolve(table: ComponentTable, folder: &Path) -> Result<ComponentSpec, String> {
    let trigger = match (table.route, table.args) {
        (Some(route), None) => Trigger::Http {
            route: normalize_route(&route)?,
        },
        (Some(_), Some(_)) => {
            return Err(
                "args are for CLI components, which have no route; an HTTP component gets its arguments from requests"
                    .to_owned(),
            );
        }
        (None, args) => Trigger::Cli {
            args: args.unwrap_or_default(),
        },
    };
    let max_memory = match table.max_memory {
        None => None,
        Some(Size::Bytes(bytes)) => {
            Some(usize::try_from(bytes).map_err(|_| "max_memory is too large".to_owned())?)
        }
        Some(Size::Text(text)) => Some(parse_bytes(&text).map_err(|e| format!("max_memory: {e}"))?),
    };
    let timeout = table
        .timeout
        .map(|t| parse_duration(&t).map_err(|e| format!("timeout: {e}")))
        .transpose()?;
    let preopens = table
        .dirs
        .iter()
        .map(|d| {
            let mut preopen = Preopen::parse(d).map_err(|e| format!("dirs: {e}"))?;
            preopen.host = folder.join(&preopen.host);
            Ok(preopen)
        })
        .collect::<Result<_, String>>()?;
    let hosts = |key: &str, list: &[String]| -> Result<Vec<HostPattern>, String> {
        list.iter()
            .map(|h| HostPattern::parse(h).map_err(|e| format!("{key}: {e}")))
            .collect()
    };
    let allowed = hosts("allowed_outbound_hosts", &table.allowed_outbound_hosts)?;
    let propagate_to = match table.propagate_to {
        Some(list) if list.iter().any(|h| h.trim() == "none") => Some(Vec::new()),
        Some(list) => Some(hosts("propagate_to", &list)?),
        None => None,
    };
    let mut keyvalue = KeyValueConfig::default();
    for (name, backend) in table.keyvalue {
        let backend = match StoreBackend::parse(&backend) {
            Ok(StoreBackend::File(path)) => StoreBackend::File(folder.join(path)),
            Ok(backend) => backend,
            Err(err) => return Err(format!("keyvalue.{name}: {err}")),
        };
        keyvalue.stores.insert(name, backend);
    }
    let config = table.config.into_iter();
    let config = config
        .map(|(key, value)| (key, value.into_text()))
        .collect();
    Ok(ComponentSpec {
        source: folder.join(&table.source),
        trigger,
        limits: Limits {
            fuel: table.fuel,
            max_memory,
            timeout,
        },
        grants: Grants {
            wasi: WasiConfig {
                env: table.env.into_iter().collect(),
                dirs: preopens,
                ..WasiConfig::default()
            },
            outbound_http: OutboundPolicy::new(allowed, propagate_to),
            keyvalue,
            config,
        },
        id: table.id,
    })
}

/// `/api/` and `/api` are the same route; a route must start with `/`.
fn normalize_route(route: &str) -> Result<String, String> {
    if !route.starts_with('/') {
        return Err(format!("route {route:?} must start with /"));
    }
    let trimmed = route.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// 1-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
[workload]
name = "shop"

[[component]]
id = "api"
source = "api.wasm"
route = "/api/"
fuel = 50_000_000
max_memory = "64MiB"
timeout = "2s"
allowed_outbound_hosts = ["127.0.0.1:8081"]
propagate_to = ["none"]
env = { GREETING = "hi" }

[[component]]
id = "web"
source = "/srv/web.wasm"
route = "/"
max_memory = 1048576
"#;

    #[test]
    fn the_issue_example_reads_with_paths_resolved() {
        let workload = parse(SHOP, Path::new("/etc/shop")).unwrap();
        assert_eq!(workload.name, "shop");
        let api = &workload.components[0];
        assert_eq!(api.source, Path::new("/etc/shop/api.wasm"));
        assert_eq!(workload.id, "shop", "the id defaults to the name");
        assert_eq!(
            api.trigger,
            Trigger::Http {
                route: "/api".to_owned()
            }
        );
        assert_eq!(api.limits.fuel, Some(50_000_000));
        assert_eq!(api.limits.max_memory, Some(64 << 20));
        assert_eq!(api.limits.timeout, Some(std::time::Duration::from_secs(2)));
        assert_eq!(
            api.grants.wasi.env,
            [("GREETING".to_owned(), "hi".to_owned())]
        );
        let upstream: http::Uri = "http://127.0.0.1:8081/".parse().unwrap();
        let outbound = &api.grants.outbound_http;
        assert!(outbound.allows(&upstream) && !outbound.propagates_to(&upstream));
        let web = &workload.components[1];
        assert_eq!(
            web.source,
            Path::new("/srv/web.wasm"),
            "absolute paths stay"
        );
        assert_eq!(
            (&web.trigger, web.limits.max_memory),
            (
                &Trigger::Http {
                    route: "/".to_owned()
                },
                Some(1 << 20)
            )
        );
        assert!(!web.grants.outbound_http.allows(&upstream));
    }

    #[test]
    fn a_component_without_a_route_is_a_cli_run() {
        let text = r#"
[workload]
id = "nightly-1"
name = "nightly"

[[component]]
id = "migrate"
source = "migrate.wasm"
args = ["--dry-run"]
"#;
        let workload = parse(text, Path::new(".")).unwrap();
        assert_eq!(workload.id, "nightly-1");
        assert_eq!(
            workload.components[0].trigger,
            Trigger::Cli {
                args: vec!["--dry-run".to_owned()]
            }
        );
        let both = text.replace("args =", "route = \"/m\"\nargs =");
        let err = parse(&both, Path::new(".")).unwrap_err();
        assert!(err.contains("args are for CLI components"), "{err}");
    }

    #[test]
    fn errors_say_where_and_what() {
        let typo = SHOP.replace("timeout = \"2s\"", "timeuot = \"2s\"");
        let err = parse(&typo, Path::new(".")).unwrap_err();
        assert!(
            err.starts_with("11:1: unknown field `timeuot`, expected one of"),
            "{err}"
        );

        let wrong_type = SHOP.replace("fuel = 50_000_000", "fuel = \"lots\"");
        let err = parse(&wrong_type, Path::new(".")).unwrap_err();
        assert!(
            err.starts_with("9:8: invalid type: string \"lots\", expected u64"),
            "{err}"
        );

        let bad_size = SHOP.replace("\"64MiB\"", "\"64 parsecs\"");
        let err = parse(&bad_size, Path::new(".")).unwrap_err();
        assert!(
            err.contains("component \"api\": max_memory:") && err.contains("unknown unit"),
            "{err}"
        );

        let same_route = SHOP.replace("route = \"/\"", "route = \"/api\"");
        assert!(
            parse(&same_route, Path::new("."))
                .unwrap_err()
                .contains("both serve \"/api\"")
        );

        let bad_host = SHOP.replace("127.0.0.1:8081", "127.0.0.1:http");
        let err = parse(&bad_host, Path::new(".")).unwrap_err();
        assert!(
            err.contains("component \"api\": allowed_outbound_hosts:")
                && err.contains("not a port"),
            "{err}"
        );

        let no_slash = SHOP.replace("route = \"/\"", "route = \"web\"");
        assert!(
            parse(&no_slash, Path::new("."))
                .unwrap_err()
                .contains("must start with /")
        );

        let err = parse("[workload]\nname = \"x\"\n", Path::new(".")).unwrap_err();
        assert!(err.contains("at least one [[component]]"), "{err}");
    }

    #[test]
    fn plugin_tables_are_read_with_file_stores_relative_to_the_manifest() {
        let text = r#"
[workload]
name = "p"

[[component]]
id = "api"
source = "api.wasm"
route = "/"

[component.keyvalue]
"" = "data/kv.redb"
cache = "memory"
shared = "redis://127.0.0.1:6379/1"

[component.config]
greeting = "hi"
limit = 50
on = true
"#;
        let workload = parse(text, Path::new("/srv/app")).unwrap();
        let grants = &workload.components[0].grants;
        let stores = &grants.keyvalue.stores;
        assert_eq!(
            stores[""],
            StoreBackend::File(PathBuf::from("/srv/app/data/kv.redb"))
        );
        assert_eq!(stores["cache"], StoreBackend::Memory);
        assert_eq!(stores["shared"].kind(), "redis");
        let config: Vec<(&str, &str)> = grants
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            config,
            [("greeting", "hi"), ("limit", "50"), ("on", "true")]
        );

        let bad = text.replace("\"memory\"", "\"nats://x\"");
        let err = parse(&bad, Path::new(".")).unwrap_err();
        assert!(
            err.contains("component \"api\": keyvalue.cache:")
                && err.contains("unknown key-value backend"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Text a user might put in a manifest's string: plausible or anything (without the
    /// `'` and newline that would end a TOML literal string).
    fn a_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,12}(B|KB|KiB|MiB|GiB|ms|s|m|h| parsecs)?",
            "[a-z0-9.:/*=_-]{0,24}",
            "[^'\\n\\r]{0,40}",
        ]
    }

    proptest! {
        /// Any text at all is read or refused with an error: never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in any::<String>()) {
            if let Err(err) = parse(&text, Path::new(".")) {
                prop_assert!(!err.trim().is_empty());
            }
        }

        /// A manifest whose values are anything is read or refused with an error that
        /// names the component it concerns (or says where in the file).
        #[test]
        fn any_values_are_read_or_refused_naming_the_component(
            route in a_text(), max_memory in a_text(), timeout in a_text(), dir in a_text(),
            host in a_text(), store in a_text(), config in a_text(),
        ) {
            let text = format!(
                "[workload]\nname = 'w'\n\n[[component]]\nid = 'c'\nsource = 'c.wasm'\n\
                 route = '{route}'\nmax_memory = '{max_memory}'\ntimeout = '{timeout}'\n\
                 dirs = ['{dir}']\nallowed_outbound_hosts = ['{host}']\n\n\
                 [component.keyvalue]\ns = '{store}'\n\n[component.config]\nk = '{config}'\n"
            );
            if let Err(err) = parse(&text, Path::new(".")) {
                prop_assert!(err.contains("component \"c\"") || err.contains(':'), "{err}");
            }
        }

        /// Sizes and durations: anything is read or refused, never a panic; and what they
        /// write is read back as the same value.
        #[test]
        fn sizes_and_durations_read_or_refuse_anything(text in any::<String>(), n in 0u32..1 << 20) {
            let _ = parse_bytes(&text);
            let _ = parse_duration(&text);
            prop_assert_eq!(parse_bytes(&format!("{n}KiB")).unwrap(), n as usize * 1024);
            prop_assert_eq!(
                parse_duration(&format!("{n}ms")).unwrap(),
                std::time::Duration::from_millis(u64::from(n))
            );
        }

        /// Every flag value of the capabilities and plugins: read or refused, never a panic.
        #[test]
        fn flag_values_are_read_or_refused(text in any::<String>()) {
            let _ = wasmlens_keyvalue::parse_store_flag(&text);
            let _ = wasmlens_config::parse_config_flag(&text);
            let _ = wasmlens_outbound_http::HostPattern::parse(&text);
            let _ = wasmlens_wasi::Preopen::parse(&text);
        }
    }
}
