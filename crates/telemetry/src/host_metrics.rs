//! Host metrics: the wasmlens process (`host.*`) and the machine (`system.*`), read from
//! procfs by observable instruments when a reader collects, so nothing polls between
//! exports. Linux only; elsewhere these metrics are absent.

use crate::names::{attr, metric};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use procfs::{Current as _, CurrentSI as _, WithCurrentSystemInfo as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CPU_MODES: [&str; 8] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "interrupt",
    "softirq",
    "steal",
];

/// Time spent in each of [`CPU_MODES`], in clock ticks, summed over all CPUs.
fn cpu_ticks() -> Option<[u64; 8]> {
    let total = procfs::KernelStats::current().ok()?.total;
    Some([
        total.user,
        total.nice,
        total.system,
        total.idle,
        total.iowait.unwrap_or(0),
        total.irq.unwrap_or(0),
        total.softirq.unwrap_or(0),
        total.steal.unwrap_or(0),
    ])
}

/// CPU time (user + system) of this process, in clock ticks.
fn process_ticks() -> Option<u64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

fn logical_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Skips devices whose traffic says nothing about the machine's real disks.
fn is_real_disk(name: &str) -> bool {
    !(name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram"))
}

/// The shortest window a utilization is computed over.
const MIN_WINDOW: Duration = Duration::from_secs(5);

/// A figure computed from the change in a sample since the figure was last computed.
/// Each reader (OTLP's periodic one, a Prometheus scrape) collects at its own pace and
/// the callback cannot tell them apart: when two collect within [`MIN_WINDOW`] of each
/// other, the second gets the first's figure rather than one over a sliver of time.
struct Windowed<S, F> {
    /// When the last figure was computed, the sample it was computed at, and the figure.
    last: Mutex<(Instant, S, Option<F>)>,
}

impl<S, F: Clone> Windowed<S, F> {
    fn new(sample: S) -> Self {
        Windowed {
            last: Mutex::new((Instant::now(), sample, None)),
        }
    }

    /// `compute(earlier, now, seconds between them)`.
    fn figure(&self, now: S, compute: impl FnOnce(&S, &S, f64) -> Option<F>) -> Option<F> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = last.0.elapsed();
        if elapsed < MIN_WINDOW && last.2.is_some() {
            return last.2.clone();
        }
        let figure = compute(&last.1, &now, elapsed.as_secs_f64());
        if figure.is_some() {
            *last = (Instant::now(), now, figure.clone());
        }
        figure
    }
}

pub(crate) fn register(meter: &Meter) {
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let mode_attrs: Vec<[KeyValue; 1]> = CPU_MODES
        .iter()
        .map(|mode| [KeyValue::new(attr::CPU_MODE, *mode)])
        .collect();

    // The process: its resident memory, and its share of the machine's CPU since the
    // last collection.
    meter
        .u64_observable_gauge(metric::HOST_MEMORY_USED)
        .with_unit("By")
        .with_description("Resident memory of the wasmlens process")
        .with_callback(|observer| {
            let rss = procfs::process::Process::myself()
                .and_then(|p| p.stat())
                .map(|stat| stat.rss_bytes().get());
            if let Ok(rss) = rss {
                observer.observe(rss, &[]);
            }
        })
        .build();
    let process = Windowed::new(process_ticks().unwrap_or(0));
    meter
        .f64_observable_gauge(metric::HOST_CPU_UTILIZATION)
        .with_unit("1")
        .with_description("CPU used by the wasmlens process since the last collection, as a fraction of all CPUs (0 to 1)")
        .with_callback(move |observer| {
            let Some(now) = process_ticks() else { return };
            let fraction = process.figure(now, |earlier, now, seconds| {
                let used = now.saturating_sub(*earlier) as f64 / ticks;
                (seconds > 0.0).then(|| (used / (seconds * logical_cpus() as f64)).clamp(0.0, 1.0))
            });
            if let Some(fraction) = fraction {
                observer.observe(fraction, &[]);
            }
        })
        .build();

    // The machine's CPUs.
    {
        let mode_attrs = mode_attrs.clone();
        meter
            .f64_observable_counter(metric::SYSTEM_CPU_TIME)
            .with_unit("s")
            .with_description("CPU time of the machine by mode, summed over its CPUs")
            .with_callback(move |observer| {
                if let Some(modes) = cpu_ticks() {
                    for (value, attrs) in modes.iter().zip(&mode_attrs) {
                        observer.observe(*value as f64 / ticks, attrs);
                    }
                }
            })
            .build();
    }
    let machine = Windowed::new(cpu_ticks().unwrap_or_default());
    meter
        .f64_observable_gauge(metric::SYSTEM_CPU_UTILIZATION)
        .with_unit("1")
        .with_description("Share of the machine's CPU time in each mode since the last collection")
        .with_callback(move |observer| {
            let Some(now) = cpu_ticks() else { return };
            let shares = machine.figure(now, |earlier, now, _| {
                let deltas =
                    std::array::from_fn::<u64, 8, _>(|i| now[i].saturating_sub(earlier[i]));
                let total: u64 = deltas.iter().sum();
                (total > 0).then(|| deltas.map(|delta| delta as f64 / total as f64))
            });
            for (share, attrs) in shares.iter().flatten().zip(&mode_attrs) {
                observer.observe(*share, attrs);
            }
        })
        .build();
    meter
        .i64_observable_up_down_counter(metric::SYSTEM_CPU_LOGICAL_COUNT)
        .with_unit("{cpu}")
        .with_description("Logical CPUs available to wasmlens")
        .with_callback(|observer| observer.observe(logical_cpus() as i64, &[]))
        .build();

    // The machine's memory.
    let memory_states = |info: &procfs::Meminfo| {
        let used = info
            .mem_total
            .saturating_sub(info.mem_free + info.buffers + info.cached);
        [
            ("used", used),
            ("free", info.mem_free),
            ("buffers", info.buffers),
            ("cached", info.cached),
        ]
    };
    meter
        .i64_observable_up_down_counter(metric::SYSTEM_MEMORY_USAGE)
        .with_unit("By")
        .with_description("Memory of the machine by state")
        .with_callback(move |observer| {
            if let Ok(info) = procfs::Meminfo::current() {
                for (state, bytes) in memory_states(&info) {
                    observer.observe(
                        bytes as i64,
                        &[KeyValue::new(attr::SYSTEM_MEMORY_STATE, state)],
                    );
                }
            }
        })
        .build();
    meter
        .i64_observable_up_down_counter(metric::SYSTEM_MEMORY_LIMIT)
        .with_unit("By")
        .with_description("Total memory of the machine")
        .with_callback(|observer| {
            if let Ok(info) = procfs::Meminfo::current() {
                observer.observe(info.mem_total as i64, &[]);
            }
        })
        .build();
    meter
        .f64_observable_gauge(metric::SYSTEM_MEMORY_UTILIZATION)
        .with_unit("1")
        .with_description("Share of the machine's memory in each state")
        .with_callback(move |observer| {
            if let Ok(info) = procfs::Meminfo::current() {
                let total = info.mem_total.max(1) as f64;
                for (state, bytes) in memory_states(&info) {
                    observer.observe(
                        bytes as f64 / total,
                        &[KeyValue::new(attr::SYSTEM_MEMORY_STATE, state)],
                    );
                }
            }
        })
        .build();

    // Disks: bytes and operations, read and written.
    let disk_counter = |name: &'static str,
                        unit: &'static str,
                        description: &'static str,
                        read: fn(&procfs::DiskStat) -> (u64, u64)| {
        meter
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |observer| {
                let Ok(disks) = procfs::DiskStats::current() else {
                    return;
                };
                for disk in disks.0.iter().filter(|d| is_real_disk(&d.name)) {
                    let (read_value, write_value) = read(disk);
                    for (direction, value) in [("read", read_value), ("write", write_value)] {
                        observer.observe(
                            value,
                            &[
                                KeyValue::new(attr::SYSTEM_DEVICE, disk.name.clone()),
                                KeyValue::new(attr::DISK_IO_DIRECTION, direction),
                            ],
                        );
                    }
                }
            })
            .build();
    };
    // diskstats counts 512-byte sectors whatever the device's own sector size.
    disk_counter(
        metric::SYSTEM_DISK_IO,
        "By",
        "Bytes read from and written to each disk",
        |d| (d.sectors_read * 512, d.sectors_written * 512),
    );
    disk_counter(
        metric::SYSTEM_DISK_OPERATIONS,
        "{operation}",
        "Reads and writes completed by each disk",
        |d| (d.reads, d.writes),
    );

    // Network interfaces: bytes, packets and errors, received and transmitted.
    let network_counter =
        |name: &'static str,
         unit: &'static str,
         description: &'static str,
         read: fn(&procfs::net::DeviceStatus) -> (u64, u64)| {
            meter
                .u64_observable_counter(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |observer| {
                    let Ok(devices) = procfs::net::dev_status() else {
                        return;
                    };
                    for device in devices.values() {
                        let (received, sent) = read(device);
                        for (direction, value) in [("receive", received), ("transmit", sent)] {
                            observer.observe(
                                value,
                                &[
                                    KeyValue::new(
                                        attr::NETWORK_INTERFACE_NAME,
                                        device.name.clone(),
                                    ),
                                    KeyValue::new(attr::NETWORK_IO_DIRECTION, direction),
                                ],
                            );
                        }
                    }
                })
                .build();
        };
    network_counter(
        metric::SYSTEM_NETWORK_IO,
        "By",
        "Bytes received and sent on each interface",
        |d| (d.recv_bytes, d.sent_bytes),
    );
    network_counter(
        metric::SYSTEM_NETWORK_PACKETS,
        "{packet}",
        "Packets received and sent on each interface",
        |d| (d.recv_packets, d.sent_packets),
    );
    network_counter(
        metric::SYSTEM_NETWORK_ERRORS,
        "{error}",
        "Receive and transmit errors on each interface",
        |d| (d.recv_errs, d.sent_errs),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_close_together_share_a_figure() {
        let windowed = Windowed::new(0_u64);
        let change = |earlier: &u64, now: &u64, _| Some(now - earlier);
        assert_eq!(
            windowed.figure(10, change),
            Some(10),
            "the first collection"
        );
        assert_eq!(
            windowed.figure(11, change),
            Some(10),
            "a second reader right after gets the same figure, not one over a sliver"
        );
        let long_ago = Instant::now() - MIN_WINDOW;
        windowed.last.lock().unwrap().0 = long_ago;
        assert_eq!(
            windowed.figure(15, change),
            Some(5),
            "then the change since the first"
        );
    }
}
