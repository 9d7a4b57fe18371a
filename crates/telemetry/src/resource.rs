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
/// `OTEL_RESOURCE_ATTRIBUTES`, else `ENVIRONMENT`, else `development`.
pub fn build(lookup: impl Fn(&str) -> Option<String>) -> Resource {
    let detectors: [Box<dyn ResourceDetector>; 2] = [
        Box::new(SdkProvidedResourceDetector),
        Box::new(EnvResourceDetector::new()),
    ];
    let detected = Resource::builder_empty().with_detectors(&detectors).build();

    let mut builder = Resource::builder().with_attributes([
        KeyValue::new(key::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        KeyValue::new(key::SERVICE_INSTANCE_ID, uuid::Uuid::new_v4().to_string()),
        KeyValue::new(key::HOST_NAME, host_name()),
        KeyValue::new(key::PROCESS_PID, i64::from(std::process::id())),
        KeyValue::new(key::OS_TYPE, std::env::consts::OS),
    ]);
    let service_name = detected
        .get(&key::SERVICE_NAME.into())
        .map(|v| v.to_string());
    if service_name.is_none_or(|name| name.starts_with("unknown_service")) {
        builder = builder.with_service_name(DEFAULT_SERVICE_NAME);
    }
    if detected
        .get(&key::DEPLOYMENT_ENVIRONMENT_NAME.into())
        .is_none()
    {
        let environment = lookup("ENVIRONMENT")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "development".to_owned());
        builder =
            builder.with_attribute(KeyValue::new(key::DEPLOYMENT_ENVIRONMENT_NAME, environment));
    }
    // The detected attributes go last so that what the user set wins over the defaults.
    builder
        .with_attributes(
            detected
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
