//! Shared harness for the integration tests (`mod support;` in each test file):
//! a MariaDB pair, the proxy binary in front of it, and real clients.
//!
//! Everything here panics with a readable message instead of returning errors: a
//! test that cannot set up must fail, never skip (a missing MariaDB is a failure).
//!
//! The standard proxy config has an admin socket and a state file in the proxy's own
//! temp dir and a `[replication]` account, so every proxy can be switched over with
//! [`Proxy::ctl`] and restarted with [`Proxy::restart`]; [`Proxy::builder`] changes
//! it (`[proxy]` keys, users, more tables, environment). `load` holds the switchover
//! workload and its checker.
#![allow(dead_code)]

pub mod create;
pub mod in_process;
pub mod load;
pub mod prometheus;
pub mod raw;
pub mod tls;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use switchyard::testbed::{
    free_port, Build, Flavor, Pair, PairOptions, APP_PASSWORD, APP_USER, CONTROL_PASSWORD,
    CONTROL_USER, REPL_PASSWORD, REPL_USER,
};

/// `#[test]`s `NAME::mariadb` and `NAME::mysql`, each calling `NAME(flavor)`: one test
/// body run against both kinds of server.
#[macro_export]
macro_rules! for_each_flavor {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn mariadb() {
                super::$name(switchyard::testbed::Flavor::MariaDb)
            }
            #[test]
            fn mysql() {
                super::$name(switchyard::testbed::Flavor::MySql)
            }
        }
    )*};
}

/// [`for_each_flavor!`] for `async fn NAME(flavor)`, on a multi-threaded runtime.
#[macro_export]
macro_rules! for_each_flavor_async {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb() {
                super::$name(switchyard::testbed::Flavor::MariaDb).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn mysql() {
                super::$name(switchyard::testbed::Flavor::MySql).await
            }
        }
    )*};
}

/// How long the proxy may take to greet a client after it is spawned.
const PROXY_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the proxy may take to exit after SIGTERM before it is killed.
const PROXY_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running blue/green pair: blue = the system's MariaDB; green = the folder named by
/// `SWITCHYARD_GREEN_BUILD` (see scripts/fetch-mariadb.sh) or the system's too.
pub fn pair() -> Pair {
    pair_of(Flavor::MariaDb)
}

/// A running pair of `flavor`: MariaDB as [`pair`] starts it, MySQL both on
/// [`mysql_build`].
pub fn pair_of(flavor: Flavor) -> Pair {
    Pair::start(pair_options(flavor))
        .unwrap_or_else(|e| panic!("cannot start the {} pair: {e}", flavor.name()))
}

/// The builds [`pair_of`] starts for `flavor`, in a temp dir.
pub fn pair_options(flavor: Flavor) -> PairOptions {
    match flavor {
        Flavor::MariaDb => {
            let blue = Build::system().unwrap_or_else(|e| panic!("MariaDB for blue: {e}"));
            let green = match Build::from_env("SWITCHYARD_GREEN_BUILD") {
                Ok(Some(build)) => build,
                Ok(None) => blue.clone(),
                Err(e) => panic!("MariaDB for green: {e}"),
            };
            PairOptions {
                blue,
                green,
                dir: None,
                server_args: Vec::new(),
            }
        }
        Flavor::MySql => {
            let build = mysql_build();
            PairOptions {
                blue: build.clone(),
                green: build,
                dir: None,
                server_args: Vec::new(),
            }
        }
    }
}

/// MariaDB 11.8 for the cross-version tests (blue stays the system's 10.11): the
/// folder named by `SWITCHYARD_UPGRADE_BUILD` (relative paths are taken from the
/// repository root), by default `target/mariadb-11.8`, which scripts/test.sh fetches
/// with scripts/fetch-server.sh. Missing, broken or another version: the test fails
/// saying what to do.
pub fn upgrade_build() -> Build {
    build_from_env(
        "SWITCHYARD_UPGRADE_BUILD",
        "mariadb-11.8",
        "MariaDB 11.8",
        "11.8.",
    )
}

/// MySQL 9.7: the folder named by `SWITCHYARD_MYSQL_BUILD` (relative paths are taken
/// from the repository root), by default `target/mysql-9.7`, which scripts/test.sh
/// fetches with scripts/fetch-server.sh. Missing, broken or another version: the test
/// fails saying what to do.
pub fn mysql_build() -> Build {
    let build = build_from_env("SWITCHYARD_MYSQL_BUILD", "mysql-9.7", "MySQL 9.7", "9.7.");
    assert_eq!(
        build.flavor(),
        Flavor::MySql,
        "the MySQL build is not MySQL"
    );
    build
}

/// The build in the folder named by `var`, else `target/NAME`, checked to run
/// `version_prefix…` (`what` names it in messages).
fn build_from_env(var: &str, name: &str, what: &str, version_prefix: &str) -> Build {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target").join(name));
    let dir = root.join(dir);
    let fetch = format!("bash scripts/fetch-server.sh {name}");
    assert!(
        dir.is_dir(),
        "no {what} build at {} (set {var}, or run `{fetch}` — scripts/test.sh does it for you)",
        dir.display()
    );
    let build = Build::from_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{what} build at {}: {e} (an interrupted download? remove the folder and run \
             `{fetch}`)",
            dir.display()
        )
    });
    let version = build
        .version()
        .unwrap_or_else(|e| panic!("the version of the build at {}: {e}", dir.display()));
    assert!(
        version.starts_with(version_prefix),
        "{} holds {version}, not {what}",
        dir.display()
    );
    build
}

/// The `switchyard proxy` binary, running in front of a pair.
pub struct Proxy {
    /// `127.0.0.1:PORT`, where clients connect.
    pub addr: String,
    pub config_path: PathBuf,
    /// `[proxy] admin_socket`, for `switchyard ctl`.
    pub admin_socket: PathBuf,
    /// `[proxy] state_file`, the switchover journal.
    pub state_file: PathBuf,
    log_path: PathBuf,
    /// `None` after [`Proxy::stop`].
    child: Option<Child>,
    /// Extra environment of the proxy process (e.g. `SWITCHYARD_FAILPOINT`).
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The standard `[proxy]` table, key by key (values in TOML); `listen`, `admin_socket`
/// and `state_file` come first, filled in for each proxy.
const STANDARD_PROXY_KEYS: [(&str, &str); 3] = [
    ("max_client_connections", "4096"),
    ("max_packet_size", "\"64MiB\""),
    ("handshake_timeout", "\"10s\""),
];

/// A proxy about to start: the standard config, changed where a test asks.
/// [`Proxy::builder`] makes one, [`ProxyBuilder::start`] starts it.
pub struct ProxyBuilder<'a> {
    pair: &'a Pair,
    /// `[proxy]` keys set by the test, in place of the standard ones or added.
    proxy_keys: Vec<(String, String)>,
    /// `[[users]]` tables in place of the standard `app` user.
    users: Option<String>,
    /// TOML appended after the standard tables.
    extra_toml: String,
    /// Lines added to both `[blue]` and `[green]`.
    backend_toml: String,
    replication_toml: String,
    env: Vec<(String, String)>,
}

impl ProxyBuilder<'_> {
    /// `key = value` in the `[proxy]` table, `value` in TOML (`"\"1s\""`, `"3"`): in
    /// place of the standard value when there is one.
    pub fn proxy_key(mut self, key: &str, value: &str) -> Self {
        self.proxy_keys.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `[[users]]` tables (TOML) in place of the standard `app` user; `""` for none.
    pub fn users(mut self, toml: &str) -> Self {
        self.users = Some(toml.to_owned());
        self
    }

    /// `key = value` in both `[blue]` and `[green]`, `value` in TOML.
    pub fn backend_key(mut self, key: &str, value: &str) -> Self {
        self.backend_toml.push_str(&format!("{key} = {value}\n"));
        self
    }

    /// `key = value` (TOML) in the `[replication]` table.
    pub fn replication_key(mut self, key: &str, value: &str) -> Self {
        self.replication_toml
            .push_str(&format!("{key} = {value}\n"));
        self
    }

    /// More TOML after the standard tables (`[switchover]`, `[auth]`, …).
    pub fn toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    /// An environment variable of the proxy process (e.g. `SWITCHYARD_FAILPOINT`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Write the config and start the proxy; returns once it greets clients.
    pub fn start(self) -> Proxy {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-proxy-")
            .tempdir()
            .expect("temp dir for the proxy");
        let addr = format!("127.0.0.1:{}", free_port());
        let config_path = dir.path().join("switchyard.toml");
        let admin_socket = dir.path().join("admin.sock");
        let state_file = dir.path().join("state.json");
        let mut proxy_keys: Vec<(String, String)> = [
            ("listen", format!("\"{addr}\"")),
            ("admin_socket", format!("\"{}\"", admin_socket.display())),
            ("state_file", format!("\"{}\"", state_file.display())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            STANDARD_PROXY_KEYS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .collect();
        // A key given twice is a TOML error: the test's value replaces the standard one.
        for (key, value) in self.proxy_keys {
            match proxy_keys.iter_mut().find(|(k, _)| *k == key) {
                Some(standard) => standard.1 = value,
                None => proxy_keys.push((key, value)),
            }
        }
        let proxy_table: String = proxy_keys
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        let users = self.users.unwrap_or_else(|| {
            format!("[[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n")
        });
        let config = format!(
            "[proxy]\n\
             {proxy_table}\
             \n\
             [blue]\n\
             address = \"{blue}\"\n\
             {backend}\
             \n\
             [green]\n\
             address = \"{green}\"\n\
             {backend}\
             \n\
             [control]\n\
             user = \"{CONTROL_USER}\"\n\
             password = \"{CONTROL_PASSWORD}\"\n\
             \n\
             [replication]\n\
             user = \"{REPL_USER}\"\n\
             password = \"{REPL_PASSWORD}\"\n\
             {replication}\
             \n\
             {users}\n\
             {extra_toml}",
            blue = self.pair.blue.addr(),
            green = self.pair.green.addr(),
            extra_toml = self.extra_toml,
            backend = self.backend_toml,
            replication = self.replication_toml,
        );
        fs::write(&config_path, config).expect("write the proxy config");
        let log_path = dir.path().join("proxy.log");
        let mut proxy = Proxy {
            addr,
            config_path,
            admin_socket,
            state_file,
            log_path,
            child: None,
            env: self.env,
            _dir: dir,
        };
        proxy.spawn();
        proxy
    }
}

impl Proxy {
    /// Start the proxy with the standard config for `pair` plus `extra_toml` appended.
    pub fn start(pair: &Pair, extra_toml: &str) -> Proxy {
        Proxy::builder(pair).toml(extra_toml).start()
    }

    /// The standard config for `pair`, to change before [`ProxyBuilder::start`].
    pub fn builder(pair: &Pair) -> ProxyBuilder<'_> {
        ProxyBuilder {
            pair,
            proxy_keys: Vec::new(),
            users: None,
            extra_toml: String::new(),
            backend_toml: String::new(),
            replication_toml: String::new(),
            env: Vec::new(),
        }
    }

    /// Start the binary with the config file and wait for its greeting. The log file
    /// is appended to, so a restarted proxy's log follows the first one's.
    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the proxy log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("proxy")
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log);
        // The log is a file, so it is plain text without help from NO_COLOR (an
        // operator's journald gets no NO_COLOR either).
        cmd.env_remove("NO_COLOR");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(cmd.spawn().expect("spawn the switchyard binary"));
        self.wait_for_greeting();
    }

    /// Stop the proxy as an operator would (SIGTERM, then SIGKILL if it overruns
    /// [`PROXY_STOP_TIMEOUT`]). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + PROXY_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL, as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again after [`Proxy::kill`] or [`Proxy::stop`], with `env` in place of
    /// the extra environment it had.
    pub fn start_again(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.spawn();
    }

    /// Stop, then start again with the same config file (same port, admin socket and
    /// state file).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `switchyard ctl --socket ADMIN_SOCKET ARGS…` as a command, not yet run (for
    /// running it in the background or from async code).
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("ctl")
            .arg("--socket")
            .arg(&self.admin_socket)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Run `switchyard ctl ARGS…` against this proxy: whether it exited 0 (the reply
    /// ended in `OK`) and what it printed on stdout. Its stderr, if any, is printed.
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        ctl_output(&args.join(" "), self.ctl_command(args).output())
    }

    /// [`Proxy::ctl`] without blocking the async runtime.
    pub async fn ctl_async(&self, args: &[&str]) -> (bool, String) {
        let output = tokio::process::Command::from(self.ctl_command(args))
            .output()
            .await;
        ctl_output(&args.join(" "), output)
    }

    /// The proxy's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// What the proxy has printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Wait until the listen port accepts a connection whose first packet is a
    /// handshake (protocol version 10).
    fn wait_for_greeting(&mut self) {
        let deadline = Instant::now() + PROXY_START_TIMEOUT;
        let addr: SocketAddr = self.addr.parse().expect("proxy address");
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait(),
                None => panic!("wait_for_greeting without a proxy process"),
            };
            if let Ok(Some(status)) = exited {
                panic!(
                    "the proxy exited ({status}) while starting; its log:\n{}",
                    self.log()
                );
            }
            match first_payload_byte(&addr) {
                Ok(0x0a) => return,
                Ok(other) => last = format!("first payload byte {other:#04x}, not a handshake"),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the proxy did not greet on {} within {PROXY_START_TIMEOUT:?} (last: {last}); its log:\n{}",
            self.addr,
            self.log()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The result of a finished `switchyard ctl`: exit status and stdout; stderr printed.
fn ctl_output(line: &str, output: std::io::Result<Output>) -> (bool, String) {
    let output = output.unwrap_or_else(|e| panic!("cannot run `switchyard ctl {line}`: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("`switchyard ctl {line}` stderr: {}", stderr.trim_end());
    }
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Connect, read the first packet, hang up; the packet's first payload byte.
fn first_payload_byte(addr: &SocketAddr) -> std::io::Result<u8> {
    let mut stream = TcpStream::connect_timeout(addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    if len == 0 {
        return Err(std::io::Error::other("empty first packet"));
    }
    // The whole packet, so that closing sends FIN rather than a reset.
    let mut payload = vec![0u8; len.min(1 << 16)];
    stream.read_exact(&mut payload)?;
    Ok(payload[0])
}

/// Run the `mariadb` client against `addr` over TCP, without TLS, as `user`.
/// `args` go after the connection options (e.g. `["-N", "-e", "select 1"]`);
/// `stdin` is fed to it when given.
pub fn mariadb_cli(
    addr: &str,
    user: &str,
    password: &str,
    db: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    cli(Flavor::MariaDb, addr, user, password, db, args, stdin)
}

/// [`mariadb_cli`] with the client of `flavor`: the system's `mariadb`, or the `mysql`
/// of [`mysql_build`], which logs in to a `caching_sha2_password` account without TLS
/// by asking the server for its RSA public key.
pub fn cli(
    flavor: Flavor,
    addr: &str,
    user: &str,
    password: &str,
    db: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let no_tls: &[&str] = match flavor {
        Flavor::MariaDb => &["--skip-ssl"],
        Flavor::MySql => &["--ssl-mode=DISABLED", "--get-server-public-key"],
    };
    let mut cmd = client_command(flavor, addr, user, password, no_tls);
    if let Some(db) = db {
        cmd.arg(format!("--database={db}"));
    }
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the {} client: {e}", flavor.name()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let input = input.to_owned();
        // Written from a thread so a large input cannot deadlock against the output.
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    child.wait_with_output().expect("wait for the client")
}

/// The client of `flavor` (the system's `mariadb`, or [`mysql_build`]'s `mysql`)
/// logging in to `addr` over TCP as `user` with the `tls` options, not yet run.
pub fn client_command(
    flavor: Flavor,
    addr: &str,
    user: &str,
    password: &str,
    tls: &[&str],
) -> Command {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    let mut cmd = match flavor {
        Flavor::MariaDb => {
            let mut cmd = Command::new(client_path());
            cmd.arg("--no-defaults");
            cmd
        }
        Flavor::MySql => mysql_build().client(),
    };
    cmd.arg("--protocol=TCP")
        .arg(format!("--host={host}"))
        .arg(format!("--port={port}"))
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"))
        .args(tls)
        .arg("--connect-timeout=10");
    cmd
}

/// `python3 tests/py/SCRIPT PROXY_PORT DIRECT_PORT` as the app user of `flavor`
/// (tests/py/common.py reads the environment it is given here), not yet run.
pub fn py_script(script: &str, proxy_addr: &str, direct_port: u16, flavor: Flavor) -> Command {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let proxy_port = proxy_addr.rsplit_once(':').expect("HOST:PORT").1;
    let mut cmd = Command::new(python());
    cmd.arg(&path)
        .arg(proxy_port)
        .arg(direct_port.to_string())
        .env("SWITCHYARD_USER", APP_USER)
        .env("SWITCHYARD_PASSWORD", APP_PASSWORD)
        .env("SWITCHYARD_FLAVOR", flavor.name())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// `python3` from PATH (the tests run PyMySQL scripts with it).
pub fn python() -> PathBuf {
    find_on_path("python3")
        .unwrap_or_else(|| panic!("python3 not found on PATH; run scripts/install-deps.sh"))
}

fn client_path() -> PathBuf {
    find_on_path("mariadb")
        .or_else(|| Some(PathBuf::from("/usr/bin/mariadb")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("the mariadb client is not installed; run scripts/install-deps.sh")
        })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `count` switchovers one after the other (blue → green, back, …) while a
/// client keeps working: `gap` of traffic before each and after the last. Each must
/// end in OK. Returns each one's last line (its figures).
pub fn switchovers(proxy: &Proxy, count: usize, gap: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..count {
        thread::sleep(gap);
        let (ok, out) = proxy.ctl(&["switchover"]);
        assert!(
            ok,
            "switchover {} of {count} failed:\n{out}\nproxy log:\n{}",
            i + 1,
            proxy.log()
        );
        lines.push(out.lines().last().unwrap_or_default().to_owned());
    }
    thread::sleep(gap);
    lines
}

/// `tests/py/client_address.py`: a PyMySQL session to `proxy` from the local address
/// `bind` as `user`, driven through its stdin and stdout.
pub fn client_address_script(proxy: &Proxy, bind: &str, user: &str, password: &str) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/client_address.py");
    let port = proxy.addr.rsplit_once(':').expect("HOST:PORT").1;
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(port)
        .arg(bind)
        .env("SWITCHYARD_USER", user)
        .env("SWITCHYARD_PASSWORD", password)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped());
    cmd
}

/// Logs in once from `bind` (see [`client_address_script`]) and returns what the
/// script printed: `{"connected": true}` or `{"error": CODE, "message": …}`.
pub fn login_from(proxy: &Proxy, bind: &str, user: &str, password: &str) -> serde_json::Value {
    let out = client_address_script(proxy, bind, user, password)
        .stdin(Stdio::null())
        .output()
        .expect("run python3 (scripts/install-deps.sh installs it with PyMySQL)");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "client_address.py printed {text:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
