//! The `redline-collector` command: parses arguments, loads and validates the configuration,
//! sets up logging, and runs the library until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redline_collector::config::Config;

mod docgen;

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
    /// Anomaly detection offline: run the detector over the Numenta Anomaly Benchmark (NAB)
    /// and score results files the way NAB does.
    Detect {
        #[command(subcommand)]
        command: DetectCommand,
    },
    /// Silences on a running collector (or any Alertmanager), like `amtool silence`.
    Silence {
        /// Base URL of the collector's HTTP API.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// Incidents on a running collector: list, show, report, acknowledge, resolve, annotate.
    Incident {
        /// Base URL of the collector's HTTP API.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(subcommand)]
        command: redline_collector::incident::cli::IncidentCommand,
    },
    /// Record a deployment (for CI pipelines).
    Deploy {
        /// Base URL of the collector's HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(flatten)]
        args: redline_collector::incident::cli::DeployArgs,
    },
    /// Export from a running collector.
    Export {
        /// Base URL of the collector's HTTP API.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Rollbacks on a running collector: list, approve, block during maintenance.
    Rollback {
        /// Base URL of the collector's HTTP API.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(subcommand)]
        command: redline_collector::verify::cli::RollbackCommand,
    },
    /// The DORA metrics of a service and environment, as a table or JSON.
    Dora {
        /// Base URL of the collector's HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:9190")]
        url: String,
        #[command(flatten)]
        args: redline_collector::incident::cli::DoraArgs,
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

#[derive(Subcommand)]
enum ExportCommand {
    /// An incident's post-mortem (Google SRE book layout, filled from the collector's data).
    Postmortem {
        id: i64,
        /// markdown, json or html.
        #[arg(long, default_value = "markdown")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DetectCommand {
    /// Run the production detector (fresh state per file) over every DATA_DIR/<category>/*.csv
    /// and write NAB results files OUT_DIR/redline/<category>/redline_<file>.csv.
    Nab {
        data_dir: PathBuf,
        out_dir: PathBuf,
        /// NAB's labels/windows.json: fills the `label` column (1 inside a window), else 0.
        #[arg(long)]
        windows: Option<PathBuf>,
    },
    /// Score NAB results files (RESULTS_DIR/<detector>/<category>/<detector>_<file>.csv) with
    /// NAB's scorer: prints each profile's threshold, raw and normalised score.
    NabScore {
        results_dir: PathBuf,
        /// NAB's labels/windows.json.
        #[arg(long)]
        windows: PathBuf,
        /// The detector name in the results paths.
        #[arg(long, default_value = "redline")]
        detector: String,
        /// Also print per-file raw scores and TP/TN/FP/FN rows per profile (CSV).
        #[arg(long)]
        per_file: bool,
        /// Score at this threshold for every profile instead of optimizing it.
        #[arg(long)]
        threshold: Option<f64>,
    },
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Silence alerts matching every matcher (`alertname=HighCPU`, `instance=~"web.*"`; a bare
    /// first word means `alertname=`); prints the new silence's id.
    Add {
        #[arg(required = true)]
        matchers: Vec<String>,
        #[arg(long, default_value = "")]
        comment: String,
        #[arg(long, default_value_t = default_author())]
        author: String,
        /// How long the silence lasts, e.g. `2h`, `30m`.
        #[arg(long, default_value = "1h")]
        duration: humantime::Duration,
    },
    /// List active and pending silences (with `--expired`, expired ones).
    Query {
        #[arg(long)]
        expired: bool,
        /// Print JSON (Alertmanager's `gettableSilences`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Expire silences now.
    Expire {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

fn default_author() -> String {
    std::env::var("USER").unwrap_or_else(|_| "redline".to_owned())
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
        Command::Man { out } => docs(docgen::man::<Cli>(&out)),
        Command::Completions { out } => docs(docgen::completions::<Cli>(&out)),
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
        Command::Silence { url, command } => silence(&url, command),
        Command::Incident { url, command } => {
            http_command(redline_collector::incident::cli::incident(&url, command))
        }
        Command::Deploy { url, args } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            http_command(
                async move { redline_collector::incident::cli::deploy(&url, &args, now).await },
            )
        }
        Command::Export {
            url,
            command: ExportCommand::Postmortem { id, format, output },
        } => http_command(async move {
            redline_collector::incident::cli::export_postmortem(
                &url,
                id,
                &format,
                output.as_deref(),
            )
            .await
        }),
        Command::Rollback { url, command } => {
            http_command(redline_collector::verify::cli::run(&url, command))
        }
        Command::Dora { url, args } => {
            http_command(async move { redline_collector::incident::cli::dora(&url, &args).await })
        }
        Command::Detect { command } => detect(command),
        Command::Validate { config } => match load(Some(&config)) {
            Ok(loaded) => {
                // The routing file is part of the configuration: `ExecStartPre` must catch
                // its errors too.
                if let Err(e) = redline_collector::alert::dispatcher::Routing::load(
                    loaded.notify.config_file.as_deref(),
                ) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                if let Err(e) = loaded.incidents.read_github_secret() {
                    eprintln!("error: {}: {e}", config.display());
                    return ExitCode::from(2);
                }
                // Token files, certificates and keys are read as the collector would at start.
                if let Err(e) = loaded.security.check_files() {
                    eprintln!("error: {}: {e}", config.display());
                    return ExitCode::from(2);
                }
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
            let overrides = Overrides {
                data_dir,
                otlp_grpc_listen,
                otlp_http_listen,
                http_listen,
            };
            let loaded = match load(config.as_ref()) {
                Ok(c) => overrides.apply(c),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // A reload reads the same file with the same overrides, so only what changed in
            // the file counts as changed.
            let source: Option<redline_collector::reload::ConfigSource> = config.map(|path| {
                let source: redline_collector::reload::ConfigSource =
                    std::sync::Arc::new(move || load(Some(&path)).map(|c| overrides.apply(c)));
                source
            });
            let config = loaded;
            match run(config, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn detect(command: DetectCommand) -> ExitCode {
    use redline_collector::detect::nab::cli;
    let (out, err) = (&mut std::io::stdout(), &mut std::io::stderr());
    let ok = match command {
        DetectCommand::Nab {
            data_dir,
            out_dir,
            windows,
        } => cli::run(&data_dir, &out_dir, windows.as_deref(), out, err),
        DetectCommand::NabScore {
            results_dir,
            windows,
            detector,
            per_file,
            threshold,
        } => {
            let options = cli::ScoreOptions {
                results_dir: &results_dir,
                windows: &windows,
                detector: &detector,
                per_file,
                threshold,
            };
            cli::score(&options, out, err)
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one HTTP client command on a small runtime and prints its output or error.
fn http_command<E: std::fmt::Display>(
    command: impl std::future::Future<Output = Result<String, E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn silence(url: &str, command: SilenceCommand) -> ExitCode {
    use redline_collector::alert::silence_cli;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            SilenceCommand::Add {
                matchers,
                comment,
                author,
                duration,
            } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                silence_cli::add(url, &matchers, &comment, &author, duration.into(), now)
                    .await
                    .map(|id| format!("{id}\n"))
            }
            SilenceCommand::Query { expired, json } => silence_cli::query(url, expired, json).await,
            SilenceCommand::Expire { ids } => {
                silence_cli::expire(url, &ids).await.map(|()| String::new())
            }
        }
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line settings that take precedence over the configuration file's.
#[derive(Clone)]
struct Overrides {
    data_dir: Option<PathBuf>,
    otlp_grpc_listen: Option<std::net::SocketAddr>,
    otlp_http_listen: Option<std::net::SocketAddr>,
    http_listen: Option<std::net::SocketAddr>,
}

impl Overrides {
    fn apply(&self, mut config: Config) -> Config {
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(a) = self.otlp_grpc_listen {
            config.otlp_grpc_listen = a;
        }
        if let Some(a) = self.otlp_http_listen {
            config.otlp_http_listen = a;
        }
        if let Some(a) = self.http_listen {
            config.http_listen = a;
        }
        config
    }
}

fn run(
    config: Config,
    source: Option<redline_collector::reload::ConfigSource>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _guard = redline_collector::telemetry::init_logging(
            config.log_format,
            config.otlp_traces_endpoint.as_deref(),
        )?;
        let signals = shutdown_signal();
        let mut collector = redline_collector::bind(config).await?;
        if let Some(source) = source {
            collector.reload_config_from(source);
        }
        // The store is open and every listener bound: under systemd (`Type=notify`) this is
        // when `systemctl start` returns.
        redline_collector::systemd::ready();
        let watchdog = tokio::spawn(redline_collector::systemd::watchdog(collector.store()));
        reload_on_sighup(collector.reloader());
        let shutdown = async move {
            signals.await;
            redline_collector::systemd::stopping();
            watchdog.abort();
        };
        collector.run(shutdown).await
    })
}

/// Reloads the configuration file, the rule files, the routing, the token files and the
/// certificates on every SIGHUP, as Prometheus does (`systemctl reload` sends it); the task
/// ends with the process. What a reload applied and what waits for a restart is logged by
/// the reload itself.
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
                Ok(outcome) if outcome.errors.is_empty() => tracing::info!("reloaded on SIGHUP"),
                Ok(outcome) => tracing::warn!(
                    errors = outcome.errors.len(),
                    "reloaded on SIGHUP with errors"
                ),
                Err(e) => tracing::warn!(error = %e, "reload on SIGHUP failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Completes on SIGTERM or SIGINT. The handlers are installed by this call, not at the first
/// poll, so a signal arriving between READY=1 and the first poll (systemd stopping a unit
/// right after it started) is a clean shutdown rather than the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(term) => {},
            () = wait(int) => {},
        }
    }
}

/// Exit status of the `man` and `completions` commands.
fn docs(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
