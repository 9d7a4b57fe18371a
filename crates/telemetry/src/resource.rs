//! The resource every signal carries, as the contract's "Resource" section describes.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{
    EnvResourceDetector, ResourceDetector, SdkProvidedResourceDetector,
};
use opentelemetry_semantic_conventions::resource as key;

const DEFAULT_SERVICE_NAME: &str = "wasmlens";

/// `service.name` from `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` (read by the
/// SDK's detectors), else `wasmlens`; `deployment.environment.name` from
/// `OTEL_RESOURCE_ATTRIBUTES`, else `ENVIRONMENT`, else `development`; then the front
/// end's `known` attributes (the shim's `container.id`), which only the user's override.
pub fn build(lookup: impl Fn(&str) -> Option<String>, known: &[KeyValue]) -> Resource {
    let detectors: [Box<dyn ResourceDetector>; 2] = [
        Box::new(SdkProvidedResourceDetector),
        Box::new(EnvResourceDetector::new()),
    ];
    let detected = Resource::builder_empty().with_detectors(&detectors).build();
    // Without a name from the user, the SDK's detector says `unknown_service:<program>`.
    let is_placeholder = |k: &opentelemetry::Key, v: &opentelemetry::Value| {
        k.as_str() == key::SERVICE_NAME && v.as_str().starts_with("unknown_service")
    };
    let user_attributes: Vec<KeyValue> = detected
        .iter()
        .filter(|(k, v)| !is_placeholder(k, v))
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let user_has = |name: &str| user_attributes.iter().any(|kv| kv.key.as_str() == name);

    let mut builder = Resource::builder_empty().with_attributes([
        KeyValue::new(key::SERVICE_NAME, DEFAULT_SERVICE_NAME),
        KeyValue::new(key::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        KeyValue::new(key::SERVICE_INSTANCE_ID, uuid::Uuid::new_v4().to_string()),
        KeyValue::new(key::HOST_NAME, host_name()),
        KeyValue::new(key::PROCESS_PID, i64::from(std::process::id())),
        KeyValue::new(key::OS_TYPE, std::env::consts::OS),
    ]);
    if !user_has(key::DEPLOYMENT_ENVIRONMENT_NAME) {
        let environment = lookup("ENVIRONMENT")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "development".to_owned());
        builder =
            builder.with_attribute(KeyValue::new(key::DEPLOYMENT_ENVIRONMENT_NAME, environment));
    }
    // The SDK's own (telemetry.sdk.*), then what the user set, which wins over the defaults.
    builder = builder.with_attributes(known.iter().cloned());
    builder
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(user_attributes)
        .build()
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
