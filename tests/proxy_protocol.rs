//! `proxy_protocol = true`: MariaDB sees each session as coming from the application's
//! own address. Both servers trust the proxy's address (`proxy_protocol_networks`),
//! the account `pp` exists twice — `'pp'@'127.0.0.2'` with the proxy's password and
//! the grants, `'pp'@'127.0.0.1'` with another password and none — and a PyMySQL
//! client connects to the proxy from 127.0.0.2 (`bind_address`). The backend must
//! log it in as `'pp'@'127.0.0.2'`, list it under that host, and do the same on green
//! after a switchover moved the session. In front of MySQL, which has no PROXY
//! protocol, the proxy refuses to start.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::Proxy;

const USER: &str = "pp";
const PROXY_PASSWORD: &str = "two-pw";

/// The PyMySQL session of `tests/py/client_address.py`.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn start(proxy: &Proxy, bind: &str) -> Client {
        let mut child = support::client_address_script(proxy, bind, USER, PROXY_PASSWORD)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run python3 (scripts/install-deps.sh installs it with PyMySQL)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Client {
            child,
            stdin,
            stdout,
        }
    }

    /// The next JSON line the script prints.
    fn line(&mut self, proxy: &Proxy) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the script");
        serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "the script printed {line:?} (exit: {:?})\nproxy log:\n{}",
                self.child.try_wait(),
                proxy.log()
            )
        })
    }

    /// What the session's server says of it now.
    fn check(&mut self, proxy: &Proxy) -> Value {
        self.stdin
            .write_all(b"check\n")
            .expect("write to the script");
        self.line(proxy)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_backend_sees_the_client_address_before_and_after_a_switchover() {
    let pair = support::pair();
    for server in [&pair.blue, &pair.green] {
        // Dynamic in MariaDB 10.11; unix-socket connections (the harness's) are not
        // affected unless `localhost` is listed.
        server
            .sql("SET GLOBAL proxy_protocol_networks = '127.0.0.0/8'")
            .expect("set proxy_protocol_networks");
    }
    pair.blue
        .sql(&format!(
            "CREATE DATABASE pp;
             CREATE USER '{USER}'@'127.0.0.2' IDENTIFIED BY '{PROXY_PASSWORD}';
             GRANT ALL ON pp.* TO '{USER}'@'127.0.0.2';
             CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY 'one-pw';"
        ))
        .expect("create the accounts");
    pair.wait_green_caught_up(Duration::from_secs(30))
        .expect("green has the accounts");
    let proxy = Proxy::builder(&pair)
        .backend_key("proxy_protocol", "true")
        .users(&format!(
            "[[users]]\nname = \"{USER}\"\npassword = \"{PROXY_PASSWORD}\"\n"
        ))
        .start();

    let mut client = Client::start(&proxy, "127.0.0.2");
    let login = client.line(&proxy);
    assert_eq!(login["connected"], true, "{login}");
    let on_blue = client.check(&proxy);
    assert_eq!(on_blue["user"], "pp@127.0.0.2", "{on_blue}");
    let host = on_blue["host"].as_str().unwrap_or_default();
    assert!(host.starts_with("127.0.0.2:"), "{on_blue}");
    assert_eq!(on_blue["server_id"], 1, "{on_blue}");

    // From 127.0.0.1 the server picks 'pp'@'127.0.0.1', whose password is another.
    let mut other = Client::start(&proxy, "127.0.0.1");
    let refused = other.line(&proxy);
    assert_eq!(refused["error"], 1045, "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("'pp'@'127.0.0.1'"), "{refused}");

    let (ok, out) = proxy.ctl(&["switchover"]);
    assert!(ok, "switchover:\n{out}\nproxy log:\n{}", proxy.log());
    let on_green = client.check(&proxy);
    assert_eq!(on_green["server_id"], 2, "{on_green}");
    assert_eq!(on_green["user"], "pp@127.0.0.2", "{on_green}");
    let host = on_green["host"].as_str().unwrap_or_default();
    assert!(host.starts_with("127.0.0.2:"), "{on_green}");
    // The control connections (no header) still work: status reads green's state.
    let (ok, out) = proxy.ctl(&["status"]);
    assert!(ok, "status:\n{out}");
}

/// MySQL has no PROXY protocol: `proxy_protocol = true` in front of it stops the
/// proxy at start with an error that says so.
#[test]
fn mysql_with_proxy_protocol_is_refused_at_start() {
    let pair = support::pair_of(switchyard::testbed::Flavor::MySql);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[blue]\naddress = \"{}\"\nproxy_protocol = true\n",
            pair.blue.addr()
        ),
    )
    .expect("write the config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("proxy")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the proxy") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the proxy kept running in front of MySQL with proxy_protocol = true");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is MySQL, which does not read PROXY protocol headers",
            pair.blue.addr()
        )),
        "{stderr}"
    );
}
