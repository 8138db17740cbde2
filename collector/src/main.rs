//! The `redline-collector` command: parses arguments, loads and validates the configuration,
//! sets up logging, and runs the library until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redline_collector::config::Config;

#[derive(Parser)]
#[command(
    name = "redline-collector",
    version,
    about = "Redline collector: OTLP in, SQLite store, Prometheus- and Jaeger-shaped reads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector.
    Run {
        /// Configuration file (YAML). Every setting has a default, so it is optional.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of the database (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// OTLP/gRPC listen address (overrides `listen.otlp_grpc`).
        #[arg(long)]
        otlp_grpc_listen: Option<std::net::SocketAddr>,
        /// OTLP/HTTP listen address (overrides `listen.otlp_http`).
        #[arg(long)]
        otlp_http_listen: Option<std::net::SocketAddr>,
        /// HTTP API and /metrics listen address (overrides `listen.http`).
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
    },
    /// Check a configuration file and exit: 0 when valid, 2 with the problem otherwise.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Rule files in Prometheus' format: check them, or run their promtool-style unit tests.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Alertmanager configuration files (`alertmanager.yml`), as Redline routes alerts.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check Alertmanager configuration files like `amtool check-config`: exit 0 when all are
    /// valid, 1 with `file:line:column: field: message` for each problem otherwise.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check rule files (or directories of `*.yml`/`*.yaml`): exit 0 when all are valid, 1
    /// with `file:line:column: message` for each problem otherwise.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run rule unit-test files in promtool's format: exit 0 when all pass, 1 otherwise.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rules { command } => {
            let (out, err) = (&mut std::io::stdout(), &mut std::io::stderr());
            let ok = match command {
                RulesCommand::Check { paths } => {
                    redline_collector::rules::cli::check(&paths, out, err)
                }
                RulesCommand::Test { files } => {
                    redline_collector::rules::cli::test(&files, out, err)
                }
            };
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Config {
            command: ConfigCommand::Check { files },
        } => {
            let report = redline_collector::alert::amconfig::check_files(&files);
            print!("{report}");
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Validate { config } => match load(Some(&config)) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            config,
            data_dir,
            otlp_grpc_listen,
            otlp_http_listen,
            http_listen,
        } => {
            let mut config = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(d) = data_dir {
                config.data_dir = d;
            }
            if let Some(a) = otlp_grpc_listen {
                config.otlp_grpc_listen = a;
            }
            if let Some(a) = otlp_http_listen {
                config.otlp_http_listen = a;
            }
            if let Some(a) = http_listen {
                config.http_listen = a;
            }
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _guard = redline_collector::telemetry::init_logging(
            config.log_format,
            config.otlp_traces_endpoint.as_deref(),
        )?;
        let collector = redline_collector::bind(config).await?;
        reload_on_sighup(collector.reloader());
        collector.run(shutdown_signal()).await
    })
}

/// Reloads the rule files on every SIGHUP, as Prometheus does; the task ends with the process.
fn reload_on_sighup(reloader: redline_collector::Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        };
        while hup.recv().await.is_some() {
            match reloader.reload().await {
                Ok(errors) if errors.is_empty() => tracing::info!("rules reloaded on SIGHUP"),
                Ok(errors) => tracing::warn!(
                    errors = errors.len(),
                    "rules reloaded on SIGHUP with errors"
                ),
                Err(e) => tracing::warn!(error = %e, "reload on SIGHUP failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
