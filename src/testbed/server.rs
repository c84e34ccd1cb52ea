//! One server process (`mariadbd` or `mysqld`): its command line, readiness, SQL over
//! its unix socket, and a bounded clean shutdown.
//!
//! Invariants: a `Server` owns at most one child process; `stop` always leaves no
//! process behind (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]); dropping a `Server`
//! stops it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::batch::{self, Row};
use super::process::{log_tail, run_with_stdin};
use super::{free_port, Build, Flavor, ServerTls, TestbedError};

/// How long a server may take to accept connections after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to shut down after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting on a fresh port when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;
/// Longest unix socket path we create (the kernel's limit is 107 bytes).
const MAX_SOCKET_PATH: usize = 100;
const POLL: Duration = Duration::from_millis(100);

/// A local `mariadbd` or `mysqld` listening on `127.0.0.1:port` and on a unix socket.
#[derive(Debug)]
pub struct Server {
    /// `"blue"`, `"green"` (or `"template"` while a data dir is prepared).
    pub name: &'static str,
    pub port: u16,
    pub server_id: u32,
    pub socket: PathBuf,
    pub datadir: PathBuf,
    build: Build,
    /// Holds the error log, pid file and captured stderr.
    dir: PathBuf,
    binlog: bool,
    /// TLS options the server starts with, if any.
    tls: Option<ServerTls>,
    /// Options after the testbed's own ([`super::PairOptions::server_args`]).
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// A server, not yet started, whose files live in `dir` and data in `datadir`.
    pub(crate) fn new(
        name: &'static str,
        server_id: u32,
        build: Build,
        dir: &Path,
        datadir: PathBuf,
        binlog: bool,
    ) -> Server {
        Server {
            name,
            port: free_port(),
            server_id,
            socket: socket_path(dir, name),
            datadir,
            build,
            dir: dir.to_path_buf(),
            binlog,
            tls: None,
            extra_args: Vec::new(),
            child: None,
        }
    }

    /// Start (next time) with these TLS options.
    pub(crate) fn set_tls(&mut self, tls: Option<ServerTls>) {
        self.tls = tls;
    }

    /// Start (next time) with these options after the testbed's own.
    pub(crate) fn set_extra_args(&mut self, args: Vec<String>) {
        self.extra_args = args;
    }

    /// The TLS options the server starts with, if any.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The build this server runs.
    pub fn build(&self) -> &Build {
        &self.build
    }

    /// The server's error log.
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Run `sql` with the build's client (`mariadb` or `mysql`) as root over the unix socket, in batch mode
    /// without column names (`-N -B`); returns stdout. Several statements may be given.
    pub fn sql(&self, sql: &str) -> Result<String, TestbedError> {
        let mut cmd = self.client();
        cmd.args(["-N", "-B"]);
        run_with_stdin(
            cmd,
            sql,
            &format!("mariadb on {} running {}", self.name, snippet(sql)),
        )
    }

    /// Like [`Server::sql`], for one statement, returning its rows by column name.
    pub fn sql_rows(&self, sql: &str) -> Result<Vec<Row>, TestbedError> {
        let mut cmd = self.client();
        cmd.arg("-B");
        let out = run_with_stdin(
            cmd,
            sql,
            &format!("mariadb on {} running {}", self.name, snippet(sql)),
        )?;
        Ok(batch::parse_rows(&out))
    }

    /// Start again after [`Server::stop`] or [`Server::kill`], with the same port, data
    /// dir and command line. Settings made at run time are not re-applied: green
    /// comes back writable (`read_only` OFF) but still replicating, since its
    /// replication settings are stored in its data dir.
    pub fn start(&mut self) -> Result<(), TestbedError> {
        self.spawn()?;
        self.wait_ready()
    }

    /// Clean shutdown: SIGTERM and wait (bounded), then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        self.signal_stop();
        self.wait_stopped();
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP: the server stops answering (connections stay open, the kernel still
    /// accepts new ones) until [`Server::thaw`] — a hung server, as tests need it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Server::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill")
                .arg(signal)
                .arg(pid.to_string())
                .status();
        }
    }

    /// `KILL` every binlog dump thread (the threads serving replicas), after turning
    /// `offline_mode` on so that replicas cannot log in again at once (the replication
    /// account has no `CONNECTION_ADMIN`). Best effort: a MySQL source's shutdown waits
    /// about 10 s for a dump thread that idles until its next event or heartbeat, even
    /// after its replica left.
    fn kill_dump_threads(&self) {
        let Ok(ids) = self.sql(
            "SET GLOBAL offline_mode = ON;\n\
             SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        ) else {
            return;
        };
        let kills: String = ids
            .split_whitespace()
            .map(|id| format!("KILL {id};\n"))
            .collect();
        if !kills.is_empty() {
            let _ = self.sql(&kills);
        }
    }

    /// SIGKILL, as a crash would; the next [`Server::start`] runs crash recovery.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// After [`Server::spawn`], wait until ready; start again on a new port while the
    /// chosen one turns out to be taken (another process may grab a port between
    /// [`free_port`] and the server's bind).
    pub(crate) fn wait_ready_retrying_port(&mut self) -> Result<(), TestbedError> {
        let mut attempt = 1;
        loop {
            match self.wait_ready() {
                Err(err @ TestbedError::ServerExited { .. })
                    if attempt < PORT_ATTEMPTS && self.bind_failed() =>
                {
                    tracing::debug!(server = self.name, port = self.port, %err, "port taken, retrying");
                    attempt += 1;
                    self.port = free_port();
                    self.spawn()?;
                }
                other => return other,
            }
        }
    }

    /// Launch the process without waiting for it to be ready.
    pub(crate) fn spawn(&mut self) -> Result<(), TestbedError> {
        if self.is_running() {
            return Ok(());
        }
        self.child = None;
        let stderr = File::create(self.stderr_path()).map_err(TestbedError::io(format!(
            "cannot create {}",
            self.stderr_path().display()
        )))?;
        // Truncate the error log so a failure shows this run's messages only.
        let _ = fs::remove_file(self.error_log());
        // Each server keeps its temporary files to itself, not in the system temp
        // directory: a starting server deletes every `#sql*` file in its tmpdir.
        fs::create_dir_all(self.tmpdir()).map_err(TestbedError::io(format!(
            "cannot create {}",
            self.tmpdir().display()
        )))?;
        let mut cmd = self.build.server();
        cmd.args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        tracing::debug!(server = self.name, port = self.port, "starting the server");
        let child = cmd.spawn().map_err(TestbedError::io(format!(
            "cannot start the server for {}",
            self.name
        )))?;
        self.child = Some(child);
        Ok(())
    }

    /// Poll until `select 1` works over the socket; fails early if the process exits.
    pub(crate) fn wait_ready(&mut self) -> Result<(), TestbedError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(self.exited("not started".into()));
            };
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(self.exited(status.to_string()));
            }
            if self.socket.exists() && self.ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(TestbedError::Timeout {
                    what: format!(
                        "{} accepting connections on {}",
                        self.name,
                        self.socket.display()
                    ),
                    waited: START_TIMEOUT,
                    log: self.error_log(),
                    tail: self.log_tail(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Ask the process to shut down (SIGTERM) without waiting.
    pub(crate) fn signal_stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let Some(pid) = self.pid() else {
            return;
        };
        if self.binlog && self.build.flavor() == Flavor::MySql {
            self.kill_dump_threads();
        }
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            // No `kill` program: ask the server itself.
            let _ = self.sql("SHUTDOWN");
        }
    }

    /// Wait for the process to exit after [`Server::signal_stop`]; kill it at the bound.
    pub(crate) fn wait_stopped(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(
            server = self.name,
            "the server ignored SIGTERM for {STOP_TIMEOUT:?}; killing it"
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The end of the error log and of anything printed on stderr.
    pub fn log_tail(&self) -> String {
        let mut tail = log_tail(&self.error_log(), 30);
        let stderr = log_tail(&self.stderr_path(), 10);
        if !stderr.trim().is_empty() {
            tail.push_str("\n[stderr]\n");
            tail.push_str(&stderr);
        }
        tail
    }

    fn tmpdir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let mut args = vec![
            "--no-defaults".to_owned(),
            "--user=root".to_owned(),
            format!("--datadir={}", path(&self.datadir)),
            format!("--socket={}", path(&self.socket)),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--pid-file={}", path(&self.dir.join("server.pid"))),
            format!("--tmpdir={}", path(&self.tmpdir())),
            format!("--log-error={}", path(&self.error_log())),
            format!("--server-id={}", self.server_id),
            "--skip-name-resolve".to_owned(),
            "--max-connections=4000".to_owned(),
            "--max-allowed-packet=64M".to_owned(),
            "--local-infile=1".to_owned(),
            "--innodb-buffer-pool-size=128M".to_owned(),
            "--innodb-flush-log-at-trx-commit=2".to_owned(),
            "--character-set-server=utf8mb4".to_owned(),
            "--collation-server=utf8mb4_general_ci".to_owned(),
        ];
        args.extend(
            flavor_args(self.build.flavor(), self.binlog)
                .into_iter()
                .map(str::to_owned),
        );
        args.extend(self.build.server_path_args());
        args.extend(self.tls.iter().flat_map(ServerTls::server_args));
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn client(&self) -> Command {
        let mut cmd = self.build.client();
        cmd.arg("--user=root")
            .arg(format!("--socket={}", self.socket.display()))
            .arg("--connect-timeout=10");
        cmd
    }

    fn ping(&self) -> bool {
        let mut cmd = self.client();
        cmd.args(["-N", "-B", "-e", "select 1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    fn bind_failed(&self) -> bool {
        let tail = self.log_tail();
        tail.contains("Address already in use") || tail.contains("Bind on TCP/IP port")
    }

    fn exited(&self, status: String) -> TestbedError {
        TestbedError::ServerExited {
            server: self.name,
            status,
            log: self.error_log(),
            tail: self.log_tail(),
        }
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.join("server.stderr")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The options that differ between the flavors: the binary log with GTIDs (when
/// `binlog`), replica updates logged; for MySQL also no X plugin (parallel servers
/// would fight over its port 33060), file access anywhere (its default folder does not
/// exist here) and a small redo log (its 100 MiB default would be copied per server).
fn flavor_args(flavor: Flavor, binlog: bool) -> Vec<&'static str> {
    match (flavor, binlog) {
        (Flavor::MariaDb, false) => vec![],
        (Flavor::MariaDb, true) => vec![
            "--log-bin=mysql-bin",
            "--relay-log=relay-bin",
            "--log-slave-updates",
            "--binlog-format=ROW",
            "--gtid-strict-mode=ON",
            "--sync-binlog=0",
        ],
        (Flavor::MySql, binlog) => {
            let mut args = MYSQL_ARGS.to_vec();
            if binlog {
                args.extend([
                    "--log-bin=mysql-bin",
                    "--relay-log=relay-bin",
                    "--log-replica-updates=ON",
                    "--gtid-mode=ON",
                    "--enforce-gtid-consistency=ON",
                    "--sync-binlog=0",
                ]);
            } else {
                args.push("--skip-log-bin");
            }
            args
        }
    }
}

/// What every MySQL server gets, `--initialize-insecure` included.
pub(crate) const MYSQL_ARGS: [&str; 3] = [
    "--mysqlx=OFF",
    "--secure-file-priv=",
    "--innodb-redo-log-capacity=8M",
];

/// `dir/NAME.sock`, or a short path in the temp dir when that would be too long for
/// a unix socket.
fn socket_path(dir: &Path, name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let preferred = dir.join(format!("{name}.sock"));
    if preferred.as_os_str().len() <= MAX_SOCKET_PATH {
        return preferred;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("switchyard-{}-{n}-{name}.sock", std::process::id()))
}

/// The first line of `sql`, shortened for error messages.
fn snippet(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    let mut s: String = line.chars().take(120).collect();
    if s.len() < sql.trim().len() {
        s.push_str(" ...");
    }
    format!("`{s}`")
}
