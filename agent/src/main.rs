//! The `redline-agent` binary: command line, configuration loading, logging, runtime and
//! signals, exit codes. Everything else lives in the library (`redline_agent`).
//!
//! Exit codes: 0 success (including a graceful shutdown on SIGTERM/SIGINT), 1 runtime failure
//! (a port in use, an unusable spool directory, a server dying), 2 unusable configuration or
//! command line.
//!
//! Signals: SIGTERM and SIGINT shut down gracefully; SIGHUP re-reads the configuration file
//! (with the same flags) and the token and certificate files (see [`redline_agent::Reloader`]
//! and [`redline_agent::reload`] for what applies without a restart).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use redline_agent::Config;
use redline_agent::config::{Protocol, check_endpoint};
use reqwest::Url;

mod docgen;

#[derive(Debug, Parser)]
#[command(
    name = "redline-agent",
    version,
    about = "Redline agent: host metrics and a local OTLP relay, shipped over OTLP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent until SIGTERM or SIGINT (SIGHUP reloads the configuration, tokens and
    /// certificates).
    Run(Box<RunArgs>),
    /// Check a configuration file and print "ok", or the problem (exit code 2).
    Validate {
        /// The YAML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Write man pages into a directory (for packaging).
    #[command(hide = true)]
    Man {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write bash, zsh and fish completions into a directory (for packaging).
    #[command(hide = true)]
    Completions {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// YAML configuration file (optional: every setting has a default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Collector OTLP endpoint, e.g. http://collector:14317 (overrides exporter.endpoint).
    #[arg(long, value_parser = parse_endpoint)]
    collector: Option<Url>,
    /// Host metrics interval, e.g. 10s (overrides host_metrics.interval).
    #[arg(long, value_parser = parse_interval)]
    interval: Option<Duration>,
    /// Listen address of /metrics, e.g. 127.0.0.1:9101 (overrides telemetry.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// OTLP/gRPC relay listen address (overrides relay.grpc_listen).
    #[arg(long)]
    otlp_grpc_listen: Option<SocketAddr>,
    /// OTLP/HTTP relay listen address (overrides relay.http_listen).
    #[arg(long)]
    otlp_http_listen: Option<SocketAddr>,
    /// Export protocol (overrides exporter.protocol).
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Directory of the on-disk export spool (overrides exporter.queue.directory).
    #[arg(long)]
    spool_dir: Option<PathBuf>,
}

fn parse_endpoint(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("invalid URL: {e}"))?;
    check_endpoint(&url)?;
    Ok(url)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than 0".to_string());
    }
    Ok(d)
}

/// Text on stderr; native journal entries when stderr is the journal (under systemd): each
/// event's fields become `REDLINE_<FIELD>` journal fields (`journalctl -o verbose`), the level
/// `PRIORITY`. If the journal socket cannot be reached, JSON lines on stderr.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if redline_agent::systemd::stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journal) => {
                // The prefix keeps our fields apart from the journal's own (`MESSAGE`,
                // `PRIORITY`, `CODE_FILE`...) and easy to filter on.
                let journal = journal.with_field_prefix(Some("REDLINE".to_owned()));
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journal)
                    .init();
            }
            Err(e) => {
                tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_writer(std::io::stderr)
                    .json()
                    .init();
                tracing::warn!(error = %e, "stderr is the journal but its socket is unreachable; logging JSON lines to stderr");
            }
        }
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}

fn load_config(args: &RunArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(u) = &args.collector {
        config.exporter.endpoint = Some(u.clone());
    }
    if let Some(p) = args.protocol {
        config.exporter.protocol = p;
    }
    if let Some(i) = args.interval {
        config.host_metrics.interval = i;
    }
    if let Some(a) = args.listen {
        config.telemetry.listen = a;
    }
    if let Some(a) = args.otlp_grpc_listen {
        config.relay.grpc_listen = a;
    }
    if let Some(a) = args.otlp_http_listen {
        config.relay.http_listen = a;
    }
    if let Some(d) = &args.spool_dir {
        config.exporter.queue.directory = d.clone();
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

async fn run(config: Config, source: Option<redline_agent::ConfigSource>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let mut agent = redline_agent::bind(config).await?;
    if let Some(source) = source {
        agent.reload_config_from(source);
    }
    // The spool is open and every listener bound: under systemd (`Type=notify`) this is when
    // `systemctl start` returns.
    redline_agent::systemd::ready();
    let reloader = agent.reloader();
    // Ends with the process: SIGHUP only ever asks for a reload.
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("received SIGHUP; reloading the configuration, tokens and certificates");
            reloader.reload();
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = int.recv() => tracing::info!("received SIGINT"),
        }
        redline_agent::systemd::stopping();
    };
    agent.run(shutdown).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Man { out } => docs(docgen::man::<Cli>(&out)),
        Command::Completions { out } => docs(docgen::completions::<Cli>(&out)),
        Command::Validate { config } => match Config::load(&config) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("redline-agent: warning: {w}");
                }
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("redline-agent: invalid configuration: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => {
            init_logging();
            let config = match load_config(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("redline-agent: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            // A reload reads the same file with the same overrides, so only what changed in
            // the file counts as changed.
            let source: Option<redline_agent::ConfigSource> = args.config.is_some().then(|| {
                let args = args.clone();
                let source: redline_agent::ConfigSource =
                    std::sync::Arc::new(move || load_config(&args));
                source
            });
            // A small runtime: two workers for the relay and exporter, few blocking threads
            // (host collection uses one per cycle, kept alive across cycles).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(4)
                .thread_keep_alive(Duration::from_secs(120))
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("redline-agent: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(run(config, source)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "redline-agent failed");
                    eprintln!("redline-agent: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Exit status of the `man` and `completions` commands.
fn docs(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redline-agent: {e}");
            ExitCode::from(1)
        }
    }
}
