//! Host metrics: every `host_metrics.interval`, one OTLP `ExportMetricsServiceRequest` named by
//! the OpenTelemetry semantic conventions with the hostmetrics receiver's attributes.
//!
//! [`HostCollector`] owns everything that persists between cycles (the read buffer, the
//! previous CPU ticks for utilization, the detected resource) and does the blocking work:
//! small procfs reads and `statvfs`. Each family file holds a pure parser over file contents
//! (unit-tested on fixture strings, never panicking: malformed input is counted per
//! [`Family`]) and the code that turns parsed figures into metrics.
//!
//! [`CollectTask`] is the one task that owns the collector. Each tick it moves the collector
//! onto tokio's blocking pool (so a slow `statvfs` cannot stall the relay or `/metrics`),
//! gets it back with the request, publishes the Prometheus rendering for `/metrics`, and
//! offers the request to the exporter, which spools it on disk and never waits on the network
//! (when the spool is full, its oldest data is dropped). Missed ticks are skipped, not bunched.

pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod load;
pub mod memory;
pub mod network;
pub mod otlp;
pub mod process;
pub mod resource;
pub mod uptime;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::watch;

use crate::config::HostMetricsConfig;
use crate::export::QueueHandle;
use crate::telemetry::Telemetry;
use otlp::Stamp;

/// A metric family; the `collector` label of `redline_agent_collect_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Cpu,
    Memory,
    Load,
    Disk,
    Filesystem,
    Network,
    Process,
    Uptime,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Cpu,
        Family::Memory,
        Family::Load,
        Family::Disk,
        Family::Filesystem,
        Family::Network,
        Family::Process,
        Family::Uptime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Cpu => "cpu",
            Family::Memory => "memory",
            Family::Load => "load",
            Family::Disk => "disk",
            Family::Filesystem => "filesystem",
            Family::Network => "network",
            Family::Process => "process",
            Family::Uptime => "uptime",
        }
    }
}

/// One cycle's output.
#[derive(Debug, Clone)]
pub struct Collection {
    /// The OTLP request (one resource, one scope).
    pub request: ExportMetricsServiceRequest,
    /// Data points in `request`.
    pub points: usize,
    /// Errors per family, indexed by `Family as usize`.
    pub errors: [u32; Family::ALL.len()],
}

/// Paths of the procfs files read each cycle, joined once.
#[derive(Debug, Clone)]
struct Paths {
    proc_root: PathBuf,
    stat: PathBuf,
    meminfo: PathBuf,
    loadavg: PathBuf,
    diskstats: PathBuf,
    net_dev: PathBuf,
    uptime: PathBuf,
    mounts: PathBuf,
}

/// Collects host metrics; owned by one [`CollectTask`] (or a test).
#[derive(Debug)]
pub struct HostCollector {
    cfg: HostMetricsConfig,
    paths: Paths,
    /// Reused read buffer: procfs files are read into it one after another.
    buf: String,
    cpus: Vec<cpu::CpuTimes>,
    prev_cpus: Vec<cpu::CpuTimes>,
    ticks_per_second: f64,
    resource: Resource,
    /// Start time for cumulative series when `/proc/stat` has no `btime`.
    fallback_start_ns: u64,
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Reads a whole (small) file into `buf`, reusing its allocation.
fn read_into(path: &Path, buf: &mut String) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_string(buf)?;
    Ok(())
}

impl HostCollector {
    /// Detects the host resource and prepares paths. Does no per-cycle work.
    pub fn new(cfg: &HostMetricsConfig) -> HostCollector {
        let p = &cfg.proc_root;
        let info = resource::detect(p, &cfg.etc_root);
        let ticks = rustix::param::clock_ticks_per_second();
        HostCollector {
            paths: Paths {
                proc_root: p.clone(),
                stat: p.join("stat"),
                meminfo: p.join("meminfo"),
                loadavg: p.join("loadavg"),
                diskstats: p.join("diskstats"),
                net_dev: p.join("net/dev"),
                uptime: p.join("uptime"),
                mounts: p.join("self/mounts"),
            },
            cfg: cfg.clone(),
            buf: String::with_capacity(16 * 1024),
            cpus: Vec::new(),
            prev_cpus: Vec::new(),
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
            resource: resource::resource(&info, &cfg.resource_attributes),
            fallback_start_ns: unix_ns(SystemTime::now()),
        }
    }

    /// The resource attached to every request.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Runs one collection at `now`.
    pub fn collect(&mut self, now: SystemTime) -> Collection {
        let mut errors = [0u32; Family::ALL.len()];
        let mut metrics = Vec::with_capacity(32);
        let now_ns = unix_ns(now);

        // /proc/stat first: it gives the boot time every cumulative series starts at.
        let stat = match read_into(&self.paths.stat, &mut self.buf) {
            Ok(()) => cpu::parse_stat(&self.buf, &mut self.cpus),
            Err(_) => {
                self.cpus.clear();
                cpu::StatSummary {
                    errors: 1,
                    ..Default::default()
                }
            }
        };
        errors[Family::Cpu as usize] += stat.errors;
        let start_ns = stat
            .btime
            .map(|b| b.saturating_mul(1_000_000_000))
            .unwrap_or(self.fallback_start_ns);
        let stamp = Stamp { start_ns, now_ns };

        metrics.extend(cpu::time_metric(&self.cpus, self.ticks_per_second, stamp));
        metrics.extend(cpu::utilization_metric(&self.prev_cpus, &self.cpus, stamp));
        std::mem::swap(&mut self.prev_cpus, &mut self.cpus);

        match read_into(&self.paths.meminfo, &mut self.buf) {
            Ok(()) => {
                let (m, e) = memory::parse_meminfo(&self.buf);
                errors[Family::Memory as usize] += e;
                if m.total.is_none() {
                    errors[Family::Memory as usize] += 1;
                }
                memory::metrics(&m, stamp, &mut metrics);
            }
            Err(_) => errors[Family::Memory as usize] += 1,
        }

        match read_into(&self.paths.loadavg, &mut self.buf).map(|()| load::parse_loadavg(&self.buf))
        {
            Ok(Some(l)) => load::metrics(l, stamp, &mut metrics),
            _ => errors[Family::Load as usize] += 1,
        }

        match read_into(&self.paths.diskstats, &mut self.buf) {
            Ok(()) => {
                errors[Family::Disk as usize] += disk::metrics(
                    &self.buf,
                    &self.cfg.exclude_disk_devices,
                    stamp,
                    &mut metrics,
                );
            }
            Err(_) => errors[Family::Disk as usize] += 1,
        }

        match read_into(&self.paths.mounts, &mut self.buf) {
            Ok(()) => {
                let filters = filesystem::Filters {
                    types: &self.cfg.exclude_filesystem_types,
                    mountpoints: &self.cfg.exclude_mountpoints,
                };
                errors[Family::Filesystem as usize] += filesystem::metrics(
                    &self.buf,
                    &filters,
                    filesystem::statvfs,
                    stamp,
                    &mut metrics,
                );
            }
            Err(_) => errors[Family::Filesystem as usize] += 1,
        }

        match read_into(&self.paths.net_dev, &mut self.buf) {
            Ok(()) => {
                errors[Family::Network as usize] += network::metrics(
                    &self.buf,
                    &self.cfg.exclude_network_devices,
                    stamp,
                    &mut metrics,
                );
            }
            Err(_) => errors[Family::Network as usize] += 1,
        }

        let total = match process::count_processes(&self.paths.proc_root) {
            Ok(n) => Some(n),
            Err(_) => {
                errors[Family::Process as usize] += 1;
                None
            }
        };
        if stat.procs_running.is_none() || stat.processes.is_none() {
            errors[Family::Process as usize] += 1;
        }
        process::metrics(&stat, total, stamp, &mut metrics);

        match read_into(&self.paths.uptime, &mut self.buf).map(|()| uptime::parse_uptime(&self.buf))
        {
            Ok(Some(u)) => uptime::metrics(u, stamp, &mut metrics),
            _ => errors[Family::Uptime as usize] += 1,
        }

        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "redline-agent".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let points = crate::export::batch::metric_points(&request);
        Collection {
            request,
            points,
            errors,
        }
    }
}

/// The collection task: ticks, collects, publishes, enqueues.
pub struct CollectTask {
    pub(crate) collector: HostCollector,
    pub(crate) interval: Duration,
    /// `host_metrics` as reloads change it: a new value rebuilds the collector and the ticker.
    pub(crate) settings: watch::Receiver<HostMetricsConfig>,
    pub(crate) queue: QueueHandle,
    pub(crate) telemetry: Arc<Telemetry>,
    /// Latest `/metrics` rendering; the receivers live in the `/metrics` handler.
    pub(crate) exposition: watch::Sender<Arc<str>>,
}

impl CollectTask {
    /// Runs until `shutdown` flips to `true`; then returns, dropping its queue handle (one of
    /// the inputs whose closing lets the exporter drain and finish).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let CollectTask {
            collector,
            interval,
            mut settings,
            queue,
            telemetry,
            exposition,
        } = self;
        let mut collector = Some(collector);
        let ticker = |interval| {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        };
        let mut ticks = ticker(interval);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = ticks.tick() => {}
                Ok(()) = settings.changed() => {
                    // A reload: new filters, resource attributes or interval. The next
                    // collection (at once: a new ticker's first tick is immediate) uses them.
                    let cfg = settings.borrow_and_update().clone();
                    if collector.is_some() {
                        collector = Some(HostCollector::new(&cfg));
                    }
                    ticks = ticker(cfg.interval);
                    tracing::info!(interval = ?cfg.interval, "host metrics settings reloaded");
                    continue;
                }
            }
            let Some(mut c) = collector.take() else { break };
            let job = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let collection = c.collect(SystemTime::now());
                let took = started.elapsed();
                let mut text = String::with_capacity(16 * 1024);
                crate::exposition::render(&collection.request, &mut text);
                (c, collection, took, text)
            });
            let (c, collection, took, text) = tokio::select! {
                // A collection stuck in statvfs must not hold up shutdown; the blocking thread
                // is abandoned (it finishes or dies with the process).
                _ = shutdown.wait_for(|s| *s) => break,
                r = job => match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::error!(error = %e, "host collection panicked; stopping host metrics");
                        break;
                    }
                },
            };
            collector = Some(c);
            telemetry
                .samples_collected
                .increment(collection.points as u64);
            telemetry.collection_duration.set(took.as_secs_f64());
            telemetry.collection_seconds.record(took.as_secs_f64());
            for f in Family::ALL {
                let n = collection.errors[f as usize];
                if n > 0 {
                    telemetry.collect_error(f).increment(u64::from(n));
                }
            }
            telemetry.upkeep();
            exposition.send_replace(Arc::from(text));
            tracing::debug!(
                points = collection.points,
                took_us = took.as_micros() as u64,
                "host metrics collected"
            );
            queue.offer_host(collection.request).await;
        }
        tracing::debug!("host collection stopped");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn names(c: &Collection) -> Vec<String> {
        c.request.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    #[test]
    fn collects_from_real_proc() {
        let cfg = Config::default().host_metrics;
        let mut c = HostCollector::new(&cfg);
        let first = c.collect(SystemTime::now());
        let n = names(&first);
        for want in [
            "system.cpu.time",
            "system.memory.usage",
            "system.memory.utilization",
            "system.cpu.load_average.1m",
            "system.network.io",
            "system.processes.count",
            "system.processes.created",
            "system.uptime",
        ] {
            assert!(n.iter().any(|x| x == want), "missing {want} in {n:?}");
        }
        assert!(
            !n.iter().any(|x| x == "system.cpu.utilization"),
            "no utilization on first cycle"
        );
        std::thread::sleep(Duration::from_millis(30));
        let second = c.collect(SystemTime::now());
        assert!(names(&second).iter().any(|x| x == "system.cpu.utilization"));
        let attrs = &second.request.resource_metrics[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes;
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone()?.value)
        };
        assert_eq!(get("os.type"), Some(Value::StringValue("linux".into())));
        assert_eq!(
            get("service.name"),
            Some(Value::StringValue("redline-agent".into()))
        );
        assert!(get("host.name").is_some());
        assert_eq!(second.errors.iter().sum::<u32>(), 0, "{:?}", second.errors);
    }

    #[test]
    fn fixture_root_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("stat"),
            "cpu0 1 2 3 4 5 6 7 8\nbtime 100\nprocesses 5\nprocs_running 1\nprocs_blocked 0\n",
        )
        .unwrap();
        std::fs::write(p.join("meminfo"), "MemTotal: 100 kB\nMemFree: 50 kB\n").unwrap();
        std::fs::write(p.join("loadavg"), "garbage").unwrap();
        std::fs::create_dir_all(p.join("net")).unwrap();
        std::fs::write(
            p.join("net/dev"),
            "h|\nh|\n lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        )
        .unwrap();
        std::fs::create_dir_all(p.join("1")).unwrap();
        let mut cfg = Config::default().host_metrics;
        cfg.proc_root = p.to_path_buf();
        cfg.etc_root = p.to_path_buf();
        let mut c = HostCollector::new(&cfg);
        let out = c.collect(SystemTime::now());
        assert_eq!(out.errors[Family::Load as usize], 1);
        assert_eq!(out.errors[Family::Disk as usize], 1); // missing diskstats
        assert_eq!(out.errors[Family::Filesystem as usize], 1); // missing self/mounts
        assert_eq!(out.errors[Family::Uptime as usize], 1);
        assert_eq!(out.errors[Family::Cpu as usize], 0);
        let cpu = &out.request.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) = &cpu.data else {
            panic!()
        };
        assert_eq!(s.data_points[0].start_time_unix_nano, 100_000_000_000);
        assert!(names(&out).contains(&"system.network.io".to_string()));
    }

    /// Prints the cost of one collection (run with `--release --nocapture` for real figures).
    /// Measures, does not assert.
    #[test]
    fn collection_cost() {
        let cfg = Config::default().host_metrics;
        let mut c = HostCollector::new(&cfg);
        c.collect(SystemTime::now());
        let runs = 200;
        let cpu0 = thread_cpu();
        let t0 = Instant::now();
        let mut points = 0;
        let mut text = String::new();
        for _ in 0..runs {
            let col = c.collect(SystemTime::now());
            points = col.points;
            text.clear();
            crate::exposition::render(&col.request, &mut text);
        }
        let wall = t0.elapsed() / runs;
        let cpu = (thread_cpu().saturating_sub(cpu0)) / runs;
        println!(
            "collection cost: {points} points, {:?} wall, {:?} CPU per cycle (incl. /metrics rendering, {} bytes)",
            wall,
            cpu,
            text.len()
        );
    }

    /// On-CPU time of the calling thread (`/proc/thread-self/schedstat`, nanoseconds), so tests
    /// running in parallel threads do not pollute the figure.
    fn thread_cpu() -> Duration {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        Duration::from_nanos(
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        )
    }
}
