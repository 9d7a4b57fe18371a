//! A workload as the built-in view shows it: components, routes, limits and grants, with
//! nothing that could be a secret (environment variables and configuration keys are
//! named, never valued).

use crate::spec::{Trigger, WorkloadSpec};
use wasmlens_host::Grants;
use wasmlens_telemetry::recorder::{ComponentView, LimitsView, WorkloadView};

pub(crate) fn workload_view(spec: &WorkloadSpec, state: &str) -> WorkloadView {
    WorkloadView {
        id: spec.id.clone(),
        name: spec.name.clone(),
        state: state.to_owned(),
        // Stamped by the recorder as it takes it.
        state_since_unix_nano: 0,
        components: spec
            .components
            .iter()
            .map(|c| ComponentView {
                id: c.id.clone(),
                source: c.source.display().to_string(),
                trigger: match c.trigger {
                    Trigger::Http { .. } => "http",
                    Trigger::Cli { .. } => "cli",
                },
                route: match &c.trigger {
                    Trigger::Http { route } => Some(route.clone()),
                    Trigger::Cli { .. } => None,
                },
                limits: LimitsView {
                    fuel: c.limits.fuel,
                    memory_bytes: c.limits.max_memory.map(|m| m as u64),
                    timeout_ms: c.limits.timeout.map(|t| t.as_millis() as u64),
                },
                grants: grant_lines(&c.grants),
            })
            .collect(),
    }
}

fn grant_lines(grants: &Grants) -> Vec<String> {
    let mut lines = Vec::new();
    let names = |names: Vec<&str>| names.join(", ");
    let wasi = &grants.wasi;
    if !wasi.env.is_empty() {
        let env = wasi.env.iter().map(|(name, _)| name.as_str()).collect();
        lines.push(format!("environment: {}", names(env)));
    }
    for dir in &wasi.dirs {
        lines.push(format!(
            "directory: {} as {}",
            dir.host.display(),
            dir.guest
        ));
    }
    let outbound = &grants.outbound_http;
    if outbound.allowed().is_empty() {
        lines.push("outgoing HTTP: none".to_owned());
    } else {
        let hosts: Vec<String> = outbound.allowed().iter().map(|h| h.to_string()).collect();
        lines.push(format!("outgoing HTTP: {}", hosts.join(", ")));
        let context = match outbound.propagated_to() {
            None => "every allowed host".to_owned(),
            Some([]) => "no host".to_owned(),
            Some(hosts) => hosts
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        lines.push(format!("trace context sent to: {context}"));
    }
    for (name, backend) in &grants.keyvalue.stores {
        let name = if name.is_empty() { "(default)" } else { name };
        lines.push(format!("key-value store {name}: {backend}"));
    }
    if !grants.config.is_empty() {
        let keys = grants.config.keys().map(String::as_str).collect();
        lines.push(format!("configuration: {}", names(keys)));
    }
    lines
}
