//! The `switchyard` command: `proxy` runs the proxy in the foreground; `check-config`
//! validates a config file; `demo` starts a local blue/green pair with the proxy in
//! front; `diff` and `verify` compare blue's and green's schemas and data. The only place `anyhow` is used.

use std::ffi::OsStr;
use std::io::{ErrorKind, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use switchyard::admin::client;
use switchyard::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "MySQL/MariaDB proxy for blue/green switchovers without downtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy in the foreground, logging to stderr (RUST_LOG sets the level).
    Proxy {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start a local MariaDB blue/green pair with the proxy in front, show a query
    /// through it, and serve until Ctrl-C.
    Demo {
        /// Folder for the servers' files (default: a temp dir, removed at the end).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Port for the proxy (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after showing the query and the switchover instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// Leave out the live switchover (blue stays the primary).
        #[arg(long)]
        no_switchover: bool,
    },
    /// Send one admin command to a running proxy and print its answer; exits 0 on OK,
    /// 1 on ERR. Commands: status, sessions, check, switchover [--timeout D]
    /// [--drain-timeout D], pause [--timeout D], resume, reload, history, help.
    Ctl {
        /// The proxy's admin socket (`[proxy] admin_socket`).
        #[arg(
            long,
            short,
            default_value = "/run/switchyard/admin.sock",
            env = "SWITCHYARD_SOCKET"
        )]
        socket: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// The command and its options.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Compare blue's and green's schemas and classify each difference by whether
    /// row-based replication from blue keeps working; exits 0 when compatible, 1 when
    /// not, 2 when the servers cannot be read.
    Diff {
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare blue's and green's data in checksummed primary-key chunks at the same
    /// GTID position on both (green's applier is paused for each round); read-only on
    /// blue. Exits 0 when equal, 1 on a difference, 2 on an error.
    Verify {
        /// The TOML config file: `[blue]`, `[green]` and `[control]` are used.
        #[arg(long, short)]
        config: PathBuf,
        /// About this many rows per chunk.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_rows: u64,
        /// Only these tables (`db.table`, comma-separated); default every base table.
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Bound of each statement and of each wait for green to reach a position.
        #[arg(long, default_value = "5m", value_parser = switchyard::config::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Make green from blue: check both sides' prerequisites, copy every database,
    /// table, row, view, routine, trigger, event and account at one consistent point
    /// over several connections, then make green replicate from exactly that point
    /// and wait until it has caught up. Exits 0 when green replicates, 1 when a
    /// prerequisite is missing or green is not empty, 2 on an error.
    Create {
        /// The TOML config file: `[blue]`, `[green]`, `[control]` and (optionally)
        /// `[replication]` are used.
        #[arg(long, short)]
        config: PathBuf,
        /// Copy workers, each with a connection to blue and one to green.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: u16,
        /// About this many rows per chunk (a big table is copied by several workers).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_rows: u64,
        /// Write into a green that already holds user data: blue's databases are
        /// dropped there first; green's replication settings are reset.
        #[arg(long)]
        force: bool,
        /// `auto` (bars on a terminal, plain lines otherwise), `bars`, `plain`, `quiet`.
        #[arg(long, default_value = "auto")]
        progress: String,
        /// Bound of each statement and of the wait for green to catch up.
        #[arg(long, default_value = "30m", value_parser = switchyard::config::parse_duration)]
        timeout: std::time::Duration,
        /// How long the brief global read lock on blue may wait for running statements.
        #[arg(long, default_value = "10s", value_parser = switchyard::config::parse_duration)]
        lock_wait_timeout: std::time::Duration,
    },
    /// Validate a config file and exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `switchyard diff`: one line per difference, then the verdict; the exit status
/// (0 compatible, 1 not, 2 when it cannot tell).
fn schema_diff(path: &std::path::Path, json: bool) -> i32 {
    let found = Config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            Ok(runtime.block_on(switchyard::provision::schema::diff_config(&config))?)
        });
    let report = match found {
        Ok(report) => report,
        Err(e) => {
            eprintln!("switchyard diff: {e:#}");
            return 2;
        }
    };
    for d in &report.differences {
        if json {
            println!("{}", serde_json::to_string(d).unwrap_or_default());
        } else {
            println!("{d}");
        }
    }
    let bad = report.incompatible().count();
    match (json, bad) {
        (true, _) => println!(
            "{}",
            serde_json::json!({ "compatible": bad == 0, "incompatible": bad })
        ),
        (false, 0) => println!("compatible"),
        (false, n) => println!("NOT compatible: {n} difference(s)"),
    }
    if bad == 0 {
        0
    } else {
        1
    }
}

/// Exit status of `ctl` when its output is closed: 128 + SIGPIPE, what a shell reports
/// for a program the signal stopped.
const SIGPIPE_STATUS: i32 = 128 + 13;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo prints its own story; its logs stay quiet unless RUST_LOG asks.
    let default_level = match cli.command {
        Command::Demo { .. }
        | Command::Ctl { .. }
        | Command::Diff { .. }
        | Command::Verify { .. }
        | Command::Create { .. } => "warn",
        _ => "info",
    };
    let format = match &cli.command {
        Command::Proxy { config } => LogFormat::peek(config),
        _ => LogFormat::Text,
    };
    init_logging(default_level, format);
    match cli.command {
        Command::Proxy {
            config: config_path,
        } => {
            let config = Config::load(&config_path)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let path = std::fs::canonicalize(&config_path).unwrap_or(config_path);
            runtime.block_on(switchyard::server::run(
                config,
                Some(path),
                shutdown_signal(),
            ))?;
        }
        Command::Demo {
            dir,
            port,
            exit,
            no_switchover,
        } => {
            switchyard::demo::run(switchyard::demo::DemoOptions {
                dir,
                port,
                exit,
                no_switchover,
            })?;
        }
        Command::Ctl {
            socket,
            json,
            command,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let mut stdout = std::io::stdout();
            let ok = match runtime.block_on(client::run(&socket, &command, json, &mut stdout)) {
                Ok(ok) => ok,
                // Whoever read our output stopped (`ctl status | head -1`): end quietly
                // with the status a shell shows for a program stopped by SIGPIPE, as
                // coreutils end. The command itself runs on in the proxy.
                Err(client::ClientError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => {
                    std::process::exit(SIGPIPE_STATUS)
                }
                Err(e) => return Err(e.into()),
            };
            std::process::exit(if ok { 0 } else { 1 });
        }
        Command::Diff { config, json } => {
            std::process::exit(schema_diff(&config, json));
        }
        Command::Verify {
            config,
            chunk_rows,
            tables,
            json,
            timeout,
        } => {
            let options = switchyard::provision::verify::Options {
                chunk_rows,
                tables,
                json,
                timeout,
            };
            std::process::exit(verify(&config, &options));
        }
        Command::Create {
            config,
            threads,
            chunk_rows,
            force,
            progress,
            timeout,
            lock_wait_timeout,
        } => {
            use switchyard::provision::create::{Options, ProgressMode};
            let progress = match progress.as_str() {
                "auto" => ProgressMode::Auto,
                "bars" => ProgressMode::Bars,
                "plain" => ProgressMode::Plain,
                "quiet" => ProgressMode::Quiet,
                other => anyhow::bail!("--progress {other:?}: one of auto, bars, plain, quiet"),
            };
            let options = Options {
                threads: usize::from(threads),
                chunk_rows,
                force,
                progress,
                timeout,
                lock_wait_timeout,
            };
            std::process::exit(create(&config, &options));
        }
        Command::CheckConfig { config } => {
            Config::load(&config)?;
            println!("{}: ok", config.display());
        }
    }
    Ok(())
}

/// Logs to stderr: text lines (coloured only for a person at a terminal), or one JSON
/// object per line for log shippers.
fn init_logging(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(log_colour()).init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Whether the log gets colour codes: only for a person at a terminal, never in a
/// file, a pipe or journald (where they show as `^[[32m`), and not when `NO_COLOR`
/// is set to anything but the empty string (no-color.org).
fn log_colour() -> bool {
    colour_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_wanted(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Exit status of `verify`: 0 equal, 1 different, 2 when it could not tell.
fn verify(config: &std::path::Path, options: &switchyard::provision::verify::Options) -> i32 {
    let run = || -> anyhow::Result<bool> {
        let config = Config::load(config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let summary = runtime.block_on(switchyard::provision::verify::run(
            &config,
            options,
            std::io::stdout(),
            shutdown_signal(),
        ))?;
        Ok(summary.all_equal())
    };
    match run() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// Exit status of `create`: 0 green replicates, 1 a prerequisite is missing or green
/// is not empty, 2 any other error.
fn create(config: &std::path::Path, options: &switchyard::provision::create::Options) -> i32 {
    use switchyard::provision::create::{self, CreateError};
    let run = || -> Result<create::Summary, anyhow::Error> {
        let config = Config::load(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(runtime.block_on(create::run(&config, options, shutdown_signal()))?)
    };
    match run() {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<CreateError>() {
                Some(CreateError::Prerequisites(_) | CreateError::NotEmpty(_)) => 1,
                _ => 2,
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, Some(OsStr::new("1"))));
        // An empty NO_COLOR is the same as none.
        assert!(colour_wanted(true, Some(OsStr::new(""))));
    }
}
