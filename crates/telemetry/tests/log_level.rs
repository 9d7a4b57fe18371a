//! The installed subscriber says up front which levels it keeps, to `tracing` and to the
//! `log` crate, so that the many `log::trace!` and `tracing::trace!` calls on the request
//! path (wasmtime's, hyper's) stop at their macro instead of reaching a filter that drops
//! them. Its own file: the subscriber is process-wide.

use tracing::level_filters::LevelFilter;
use wasmlens_telemetry::Telemetry;
use wasmlens_telemetry::config::TelemetryConfig;

#[test]
fn the_subscriber_tells_tracing_and_log_the_level_it_keeps() {
    // A user's RUST_LOG is not this test's.
    let config = TelemetryConfig::from_lookup(|name| {
        (name == "OTEL_LOGS_EXPORTER").then(|| "console".to_owned())
    });
    let telemetry = Telemetry::build(config).unwrap();
    // SAFETY: no other thread of this test process reads the environment.
    unsafe { std::env::remove_var("RUST_LOG") };
    telemetry.install_subscriber("info").unwrap();
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert_eq!(log::max_level(), log::LevelFilter::Info);
}
