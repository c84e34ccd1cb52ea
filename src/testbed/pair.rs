//! A blue/green pair: blue writable, green a read-only GTID replica of blue.
//!
//! Each server runs from a copy of its build's template data dir (see `template`), so
//! both start with the same accounts and an empty binary log; green then replicates
//! blue from the beginning of blue's binary log: MariaDB with
//! `MASTER_USE_GTID=slave_pos` and `read_only`, MySQL with `SOURCE_AUTO_POSITION=1`
//! and `super_read_only`. Both servers of a pair are of one flavor.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::build::version_number;
use super::template::{copy_into, template};
use super::{Build, Flavor, Server, ServerTls, TestbedError, REPL_PASSWORD, REPL_USER};

/// How long green may take to connect to blue after `START SLAVE`.
const REPLICATION_START_TIMEOUT: Duration = Duration::from_secs(30);

/// What to start.
#[derive(Debug, Clone)]
pub struct PairOptions {
    pub blue: Build,
    pub green: Build,
    /// Where the servers' files go; `None` → a fresh temp dir, removed on drop.
    /// A given dir is kept, and must not already hold `blue/` or `green/`.
    pub dir: Option<PathBuf>,
    /// More server options for both servers, after the testbed's own (a later option
    /// wins): e.g. `--max-connections=12000` for a benchmark with many sessions.
    pub server_args: Vec<String>,
}

impl PairOptions {
    /// Blue and green both the system's MariaDB, in a temp dir.
    pub fn system() -> Result<PairOptions, TestbedError> {
        let build = Build::system()?;
        Ok(PairOptions {
            blue: build.clone(),
            green: build,
            dir: None,
            server_args: Vec::new(),
        })
    }
}

/// A running blue/green pair. Dropping it stops both servers (and removes the temp dir).
#[derive(Debug)]
pub struct Pair {
    pub blue: Server,
    pub green: Server,
    // Declared last: dropped after the servers have stopped.
    dir: DirGuard,
}

impl Pair {
    /// Start a pair:
    /// 1. make (or reuse) each build's template;
    /// 2. copy it for blue and green;
    /// 3. start both;
    /// 4. make green a read-only replica of blue and wait until both replication
    ///    threads run.
    pub fn start(opts: PairOptions) -> Result<Pair, TestbedError> {
        Pair::start_with(opts, None)
    }

    /// [`Pair::start`] with TLS on both servers (one certificate for both) and green
    /// replicating from blue over TLS, blue's certificate verified with `tls.ca`.
    pub fn start_tls(opts: PairOptions, tls: ServerTls) -> Result<Pair, TestbedError> {
        Pair::start_with(opts, Some(tls))
    }

    /// Both servers started with their binary logs on, green writable and *not*
    /// replicating: a blue and an empty green for `switchyard create` to fill.
    pub fn start_unreplicated(opts: PairOptions) -> Result<Pair, TestbedError> {
        Pair::start_servers(opts, None)
    }

    fn start_with(opts: PairOptions, tls: Option<ServerTls>) -> Result<Pair, TestbedError> {
        let pair = Pair::start_servers(opts, tls)?;
        pair.replicate()?;
        tracing::info!(blue = %pair.blue.addr(), green = %pair.green.addr(), flavor = pair.flavor().name(), "pair ready");
        Ok(pair)
    }

    fn start_servers(opts: PairOptions, tls: Option<ServerTls>) -> Result<Pair, TestbedError> {
        if opts.blue.flavor() != opts.green.flavor() {
            return Err(TestbedError::MixedFlavors {
                blue: opts.blue.flavor().name(),
                green: opts.green.flavor().name(),
            });
        }
        let dir = DirGuard::new(opts.dir)?;
        let blue_template = template(&opts.blue)?;
        let green_template = template(&opts.green)?;
        let mut blue = prepare("blue", 1, opts.blue, dir.path(), &blue_template)?;
        let mut green = prepare("green", 2, opts.green, dir.path(), &green_template)?;
        blue.set_tls(tls.clone());
        green.set_tls(tls);
        blue.set_extra_args(opts.server_args.clone());
        green.set_extra_args(opts.server_args);
        blue.spawn()?;
        green.spawn()?;
        blue.wait_ready_retrying_port()?;
        green.wait_ready_retrying_port()?;
        Ok(Pair { blue, green, dir })
    }

    /// The folder holding both servers' files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// MariaDB or MySQL (both servers are the same).
    pub fn flavor(&self) -> Flavor {
        self.blue.build().flavor()
    }

    /// Wait until green has applied everything blue has at the time of the call:
    /// MariaDB's `@@gtid_binlog_pos` waited for with `MASTER_GTID_WAIT`, MySQL's
    /// `@@gtid_executed` with `WAIT_FOR_EXECUTED_GTID_SET`.
    pub fn wait_green_caught_up(&self, timeout: Duration) -> Result<(), TestbedError> {
        let (position, wait, applied) = match self.flavor() {
            Flavor::MariaDb => ("gtid_binlog_pos", "MASTER_GTID_WAIT", "gtid_slave_pos"),
            Flavor::MySql => (
                "gtid_executed",
                "WAIT_FOR_EXECUTED_GTID_SET",
                "gtid_executed",
            ),
        };
        // MySQL puts a newline after each comma of a set, which the client's batch
        // mode would print as `\n`.
        let pos = self
            .blue
            .sql(&format!("SELECT REPLACE(@@GLOBAL.{position}, '\\n', '')"))?;
        let pos = pos.trim();
        let waited = self.green.sql(&format!(
            "SELECT {wait}('{pos}', {:.3})",
            timeout.as_secs_f64()
        ))?;
        match waited.trim() {
            "0" => Ok(()),
            _ => Err(TestbedError::Timeout {
                what: format!(
                    "green reaching blue's GTID position {pos} (green is at {}; {})",
                    self.green
                        .sql(&format!("SELECT @@GLOBAL.{applied}"))?
                        .trim(),
                    self.replication_summary()
                ),
                waited: timeout,
                log: self.green.error_log(),
                tail: self.green.log_tail(),
            }),
        }
    }

    /// Wait until green's replication IO and SQL threads both run (for instance after
    /// restarting one of the servers). Fails at once on an SQL-thread error.
    pub fn wait_replicating(&self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let flavor = self.flavor();
        loop {
            let status = self.slave_status()?;
            let field = |name: &str| {
                status
                    .get(&flavor.status_column(name))
                    .map(String::as_str)
                    .unwrap_or("")
            };
            if field("Slave_IO_Running") == "Yes" && field("Slave_SQL_Running") == "Yes" {
                return Ok(());
            }
            if field("Slave_SQL_Running") == "No" && field("Last_SQL_Errno") != "0" {
                return Err(TestbedError::Replication {
                    server: self.green.name,
                    detail: field("Last_SQL_Error").to_owned(),
                });
            }
            if Instant::now() >= deadline {
                return Err(TestbedError::Timeout {
                    what: format!(
                        "green replicating from blue ({})",
                        self.replication_summary()
                    ),
                    waited: timeout,
                    log: self.green.error_log(),
                    tail: self.green.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Green's `SHOW SLAVE STATUS` (MySQL: `SHOW REPLICA STATUS`), by column name
    /// (empty if green is no replica). [`Flavor::status_column`] names the columns.
    pub fn slave_status(&self) -> Result<super::Row, TestbedError> {
        let statement = match self.flavor() {
            Flavor::MariaDb => "SHOW SLAVE STATUS",
            Flavor::MySql => "SHOW REPLICA STATUS",
        };
        Ok(self
            .green
            .sql_rows(statement)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    fn replicate(&self) -> Result<(), TestbedError> {
        let tls = self
            .blue
            .tls()
            .map(|t| t.replication_options(self.flavor()));
        let statements = match self.flavor() {
            Flavor::MariaDb => {
                // 11.4+ replicas default to MASTER_SSL=1, which a blue without TLS refuses.
                let ssl = match (&tls, version_number(&self.green.build().version()?)) {
                    (Some(tls), _) => format!(", {tls}"),
                    (None, Some(v)) if v >= (11, 4) => ", MASTER_SSL=0".to_owned(),
                    (None, _) => String::new(),
                };
                format!(
                    "SET GLOBAL read_only = ON;\n\
                     CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, \
                     MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{REPL_PASSWORD}', \
                     MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1{ssl};\n\
                     START SLAVE;",
                    port = self.blue.port
                )
            }
            // The replication account is caching_sha2_password: without TLS it logs
            // in with blue's RSA public key, which GET_SOURCE_PUBLIC_KEY asks for.
            Flavor::MySql => format!(
                "SET GLOBAL super_read_only = ON;\n\
                 CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={port}, \
                 SOURCE_USER='{REPL_USER}', SOURCE_PASSWORD='{REPL_PASSWORD}', \
                 SOURCE_AUTO_POSITION=1, {ssl}, GET_SOURCE_PUBLIC_KEY=1, \
                 SOURCE_CONNECT_RETRY=1;\n\
                 START REPLICA;",
                port = self.blue.port,
                ssl = tls.as_deref().unwrap_or("SOURCE_SSL=0"),
            ),
        };
        self.green.sql(&statements)?;
        self.wait_replicating(REPLICATION_START_TIMEOUT)
    }

    fn replication_summary(&self) -> String {
        match self.slave_status() {
            Ok(s) => {
                let flavor = self.flavor();
                let f = |name: &str| {
                    s.get(&flavor.status_column(name))
                        .cloned()
                        .unwrap_or_default()
                };
                format!(
                    "IO {} {:?}, SQL {} {:?}",
                    f("Slave_IO_Running"),
                    f("Last_IO_Error"),
                    f("Slave_SQL_Running"),
                    f("Last_SQL_Error")
                )
            }
            Err(e) => format!("reading the replica status failed: {e}"),
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Both shut down at once; each is killed if it overruns its bound.
        self.green.signal_stop();
        self.blue.signal_stop();
        self.green.wait_stopped();
        self.blue.wait_stopped();
    }
}

/// A server named `name` in `dir/name`, its data dir a copy of `template`.
fn prepare(
    name: &'static str,
    server_id: u32,
    build: Build,
    dir: &Path,
    template: &Path,
) -> Result<Server, TestbedError> {
    let home = dir.join(name);
    fs::create_dir(&home).map_err(TestbedError::io(format!(
        "cannot create {}",
        home.display()
    )))?;
    let datadir = home.join("data");
    copy_into(template, &datadir)?;
    Ok(Server::new(name, server_id, build, &home, datadir, true))
}

/// The pair's folder: a given one is kept, a temp one removed on drop.
#[derive(Debug)]
struct DirGuard {
    path: PathBuf,
    remove: bool,
}

impl DirGuard {
    fn new(dir: Option<PathBuf>) -> Result<DirGuard, TestbedError> {
        match dir {
            Some(path) => {
                fs::create_dir_all(&path).map_err(TestbedError::io(format!(
                    "cannot create {}",
                    path.display()
                )))?;
                Ok(DirGuard {
                    path,
                    remove: false,
                })
            }
            None => DirGuard::temp(),
        }
    }

    fn temp() -> Result<DirGuard, TestbedError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "switchyard-testbed-{}-{nanos:x}-{n}",
                std::process::id()
            ));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(DirGuard { path, remove: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(TestbedError::Io {
                        context: format!("cannot create {}", path.display()),
                        source: e,
                    })
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if self.remove {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
