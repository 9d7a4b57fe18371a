//! wasmlens's integration tests, one module per area, linked into one test binary: each
//! binary links wasmtime and the telemetry stack (about 250 MB in a debug build), so one
//! binary rather than one a file saves CI gigabytes of disk and most of its link time.
//! Run one area with `cargo test -p wasmlens --test integration serve::`.

mod cli;
mod collector_away;
mod contract;
mod guest_telemetry;
mod limits;
mod malformed;
mod metrics;
mod outbound;
mod overload;
mod plugins;
mod run;
mod serve;
mod signals;
mod slow_clients;
mod tls;
mod up;
mod view;
mod view_page;
