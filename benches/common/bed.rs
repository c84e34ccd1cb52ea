//! The bed a benchmark runs on: a real blue/green pair started by the testbed (free
//! ports, a temp dir, stopped on drop), the release-built `switchyard proxy` in front
//! of it as its own process (so its CPU and memory are its own), and HAProxy in TCP
//! mode in front of blue for comparison.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard::testbed::{free_port, Build, Flavor, Pair, PairOptions};

/// The server builds a benchmark can run against.
pub fn build(flavor: Flavor) -> Result<Build, String> {
    match flavor {
        Flavor::MariaDb => Build::system().map_err(|e| format!("MariaDB: {e}")),
        Flavor::MySql => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let dir = std::env::var_os("SWITCHYARD_MYSQL_BUILD")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target/mysql-9.7"));
            let dir = root.join(dir);
            if !dir.is_dir() {
                return Err(format!(
                    "no MySQL 9.7 build at {} (run `bash scripts/fetch-server.sh mysql-9.7`, or set SWITCHYARD_MYSQL_BUILD)",
                    dir.display()
                ));
            }
            Build::from_dir(&dir).map_err(|e| format!("MySQL: {e}"))
        }
    }
}

/// A pair of `flavor` whose servers also get `server_args`.
pub fn pair(flavor: Flavor, server_args: &[&str]) -> Result<Pair, String> {
    let build = build(flavor)?;
    Pair::start(PairOptions {
        blue: build.clone(),
        green: build,
        dir: None,
        server_args: server_args.iter().map(|a| a.to_string()).collect(),
    })
    .map_err(|e| format!("starting the pair: {e}"))
}

/// A child process killed (and reaped) on drop.
pub struct Process {
    pub child: Child,
    pub port: u16,
    pub name: String,
    log: PathBuf,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` (stderr into `log`) and waits until `port` accepts connections.
fn spawn(mut cmd: Command, name: &str, port: u16, log: PathBuf) -> Result<Process, String> {
    let err = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = cmd
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?;
    let process = Process {
        child,
        port,
        name: name.to_owned(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(process);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{name} did not listen on {port}: {}",
        process.log()
    ))
}

/// The demo's proxy config for `pair` on `port` (admin socket and state file named
/// after `name` in the pair's dir) plus `extra_proxy_keys` in `[proxy]` and
/// `extra_toml` after the rest.
pub fn proxy_config(
    pair: &Pair,
    name: &str,
    port: u16,
    extra_proxy_keys: &str,
    extra_toml: &str,
) -> String {
    let dir = pair.dir().display().to_string();
    let mut text = switchyard::demo::demo_config(pair, port)
        .replace(&format!("{dir}/admin.sock"), &format!("{dir}/{name}.sock"))
        .replace(
            &format!("{dir}/state.json"),
            &format!("{dir}/{name}-state.json"),
        );
    if !extra_proxy_keys.is_empty() {
        text = text.replacen("[proxy]\n", &format!("[proxy]\n{extra_proxy_keys}\n"), 1);
    }
    text.push('\n');
    text.push_str(extra_toml);
    text
}

/// `switchyard proxy` (this build, release) with `config` text, on `port`.
pub fn proxy(pair: &Pair, name: &str, port: u16, config: &str) -> Result<Process, String> {
    let path = pair.dir().join(format!("{name}.toml"));
    fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("proxy").arg("--config").arg(&path);
    spawn(cmd, name, port, pair.dir().join(format!("{name}.err")))
}

/// The admin socket of the proxy named `name` (see [`proxy_config`]).
pub fn admin_socket(pair: &Pair, name: &str) -> PathBuf {
    pair.dir().join(format!("{name}.sock"))
}

/// HAProxy in TCP mode with its defaults (one thread per core) on a free port, in
/// front of `backend` (`host:port`). `maxconn 9000`: two descriptors per connection
/// must fit the open-file limit (often 20,000).
pub fn haproxy(pair: &Pair, backend: &str) -> Result<Process, String> {
    haproxy_with_maxconn(pair, backend, 9000)
}

/// [`haproxy`] with its global `maxconn`: HAProxy wants `2 × maxconn + 17` descriptors
/// and refuses to start when the open-file limit is lower.
pub fn haproxy_with_maxconn(pair: &Pair, backend: &str, maxconn: usize) -> Result<Process, String> {
    super::require_tool("haproxy", "haproxy")?;
    let port = free_port();
    let config = format!(
        "global\n  maxconn {maxconn}\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\nlisten mysql\n  bind 127.0.0.1:{port}\n  server blue {backend}\n"
    );
    let path = pair.dir().join("haproxy.cfg");
    fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cmd = Command::new("haproxy");
    cmd.arg("-f").arg(&path).arg("-db");
    spawn(cmd, "haproxy", port, pair.dir().join("haproxy.err"))
}
