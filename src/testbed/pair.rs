//! A blue/green pair: blue writable, green a read-only GTID replica of blue.
//!
//! Each server runs from a copy of its build's template data dir (see `template`), so
//! both start with the same accounts and an empty binary log; green then replicates
//! blue from the beginning of blue's binary log (`MASTER_USE_GTID=slave_pos`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::build::version_number;
use super::template::{copy_into, template};
use super::{Build, Server, TestbedError, REPL_PASSWORD, REPL_USER};

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
}

impl PairOptions {
    /// Blue and green both the system's MariaDB, in a temp dir.
    pub fn system() -> Result<PairOptions, TestbedError> {
        let build = Build::system()?;
        Ok(PairOptions {
            blue: build.clone(),
            green: build,
            dir: None,
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
        let dir = DirGuard::new(opts.dir)?;
        let blue_template = template(&opts.blue)?;
        let green_template = template(&opts.green)?;
        let mut blue = prepare("blue", 1, opts.blue, dir.path(), &blue_template)?;
        let mut green = prepare("green", 2, opts.green, dir.path(), &green_template)?;
        blue.spawn()?;
        green.spawn()?;
        blue.wait_ready_retrying_port()?;
        green.wait_ready_retrying_port()?;
        let pair = Pair { blue, green, dir };
        pair.replicate()?;
        tracing::info!(blue = %pair.blue.addr(), green = %pair.green.addr(), "MariaDB pair ready");
        Ok(pair)
    }

    /// The folder holding both servers' files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Wait until green has applied everything in blue's binary log at the time of the
    /// call (blue's `@@gtid_binlog_pos`, waited for with `MASTER_GTID_WAIT` on green).
    pub fn wait_green_caught_up(&self, timeout: Duration) -> Result<(), TestbedError> {
        let pos = self.blue.sql("SELECT @@GLOBAL.gtid_binlog_pos")?;
        let pos = pos.trim();
        let waited = self.green.sql(&format!(
            "SELECT MASTER_GTID_WAIT('{pos}', {:.3})",
            timeout.as_secs_f64()
        ))?;
        match waited.trim() {
            "0" => Ok(()),
            _ => Err(TestbedError::Timeout {
                what: format!(
                    "green reaching blue's GTID position {pos} (green is at {}; {})",
                    self.green.sql("SELECT @@GLOBAL.gtid_slave_pos")?.trim(),
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
        loop {
            let status = self.slave_status()?;
            let field = |name: &str| status.get(name).map(String::as_str).unwrap_or("");
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

    /// Green's `SHOW SLAVE STATUS`, by column name (empty if green is no replica).
    pub fn slave_status(&self) -> Result<super::Row, TestbedError> {
        Ok(self
            .green
            .sql_rows("SHOW SLAVE STATUS")?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    fn replicate(&self) -> Result<(), TestbedError> {
        // 11.4+ replicas default to MASTER_SSL=1; the testbed's servers have no TLS.
        let ssl = match version_number(&self.green.build().version()?) {
            Some(v) if v >= (11, 4) => ", MASTER_SSL=0",
            _ => "",
        };
        self.green.sql(&format!(
            "SET GLOBAL read_only = ON;\n\
             CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, \
             MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{REPL_PASSWORD}', \
             MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1{ssl};\n\
             START SLAVE;",
            port = self.blue.port
        ))?;
        self.wait_replicating(REPLICATION_START_TIMEOUT)
    }

    fn replication_summary(&self) -> String {
        match self.slave_status() {
            Ok(s) => {
                let f = |name: &str| s.get(name).cloned().unwrap_or_default();
                format!(
                    "IO {} {:?}, SQL {} {:?}",
                    f("Slave_IO_Running"),
                    f("Last_IO_Error"),
                    f("Slave_SQL_Running"),
                    f("Last_SQL_Error")
                )
            }
            Err(e) => format!("SHOW SLAVE STATUS failed: {e}"),
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
