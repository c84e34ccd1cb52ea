//! TLS end to end, on MariaDB and MySQL 9.7 pairs whose servers use a CA the test
//! makes (tests/support/tls.rs): the servers directly first (the harness itself,
//! and what a server answers a plaintext login when it requires TLS), then through
//! the proxy, with its own certificate from the same CA and the backend leg on TLS.

mod support;

use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

use support::load::app_conn_with;
use support::raw::{hex, Raw, BASE_CAPS};
use support::tls::{status_args, status_cipher, tls_cli, tls_pair_of, Issued, TestCa};
use support::Proxy;

/// What a server says to a plaintext login when it requires TLS: the ERR packet's
/// sequence id and payload.
fn plaintext_refusal(addr: &str) -> (u8, Vec<u8>) {
    let (reply, wire) = Raw::login_answer(addr, APP_USER, APP_PASSWORD, BASE_CAPS, 0);
    assert_eq!(
        reply.payload.first(),
        Some(&0xFF),
        "{addr}: a plaintext login was not refused: {}",
        hex(&wire)
    );
    (reply.seq, reply.payload)
}

/// The error a server of `flavor` refuses a plaintext login with when it requires TLS:
/// MariaDB 10.11 says access denied (1045, 28000) as for a wrong password, MySQL
/// ER_SECURE_TRANSPORT_REQUIRED (3159, HY000).
fn refusal_code(flavor: Flavor) -> u16 {
    match flavor {
        Flavor::MariaDb => 1045,
        Flavor::MySql => 3159,
    }
}

/// The harness: both servers on the test's certificate, clients verify it, green
/// replicates over TLS; with `require_secure_transport` a plaintext login gets the
/// server's error (printed, for the proxy to copy).
fn servers_use_the_test_ca(flavor: Flavor) {
    let ca = TestCa::new("switchyard test CA");
    let server = ca.server("server");
    let pair = tls_pair_of(flavor, ca.server_tls(&server, true));
    for s in [&pair.blue, &pair.green] {
        let run = tls_cli(
            flavor,
            &s.addr(),
            APP_USER,
            APP_PASSWORD,
            &ca.ca,
            status_args(flavor),
        );
        assert!(run.ok, "{} over TLS: {}{}", s.name, run.stdout, run.stderr);
        assert!(
            status_cipher(&run.stdout).is_some(),
            "{}: the client says no TLS:\n{}",
            s.name,
            run.stdout
        );
    }
    let (seq, payload) = plaintext_refusal(&pair.blue.addr());
    eprintln!(
        "{} refuses a plaintext login with seq {seq}: {} ({})",
        flavor.name(),
        hex(&payload),
        String::from_utf8_lossy(&payload)
    );
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    assert_eq!(code, refusal_code(flavor), "{}", hex(&payload));
}

for_each_flavor!(servers_use_the_test_ca);

// ---------------------------------------------------------------------------------
// Through the proxy.

/// A TLS pair of `flavor` whose servers refuse plaintext (`require_secure_transport`),
/// so a backend leg that is not TLS could not log in at all; the proxy's own
/// certificate, from the same CA.
struct Setup {
    ca: TestCa,
    server_cert: Issued,
    proxy_cert: Issued,
    pair: Pair,
}

fn setup(flavor: Flavor) -> Setup {
    let ca = TestCa::new("switchyard test CA");
    let server_cert = ca.server("server");
    let proxy_cert = ca.server("proxy");
    let pair = tls_pair_of(flavor, ca.server_tls(&server_cert, true));
    Setup {
        ca,
        server_cert,
        proxy_cert,
        pair,
    }
}

impl Setup {
    /// The proxy with `[tls]` (its certificate, plus `tls_keys`) and TLS to both
    /// servers.
    fn proxy(&self, tls_keys: &str) -> Proxy {
        self.builder(tls_keys).start()
    }

    fn builder(&self, tls_keys: &str) -> support::ProxyBuilder<'_> {
        Proxy::builder(&self.pair)
            .client_tls(&self.proxy_cert, tls_keys)
            .backend_tls(&self.ca.ca)
    }

    fn ssl(&self) -> SslOpts {
        ssl_opts(&self.ca.ca)
    }
}

/// The command-line client with verified TLS: `status` says TLS; the backend leg is
/// TLS too (`Ssl_cipher` is the server's, passed through); queries and a 20 MiB
/// result come out byte for byte as a direct TLS connection gives them.
fn cli_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    let via = |addr: &str, args: &[&str]| {
        let run = tls_cli(flavor, addr, APP_USER, APP_PASSWORD, &s.ca.ca, args);
        assert!(
            run.ok,
            "{} client over TLS to {addr}: {}{}\nproxy log:\n{}",
            flavor.name(),
            run.stdout,
            run.stderr,
            proxy.log()
        );
        run.stdout
    };
    let status = via(&proxy.addr, status_args(flavor));
    let cipher = status_cipher(&status);
    assert!(cipher.is_some(), "the client says no TLS:\n{status}");
    let backend = via(
        &proxy.addr,
        &["-N", "-B", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'"],
    );
    assert!(
        backend.trim().starts_with("Ssl_cipher\t") && backend.trim().len() > "Ssl_cipher".len(),
        "the backend leg is not TLS: {backend:?}"
    );
    eprintln!(
        "client leg: {}; backend leg: {}",
        cipher.unwrap_or_default(),
        backend.trim()
    );
    let sql = "CREATE TABLE test.t (id INT PRIMARY KEY, v VARCHAR(20)); \
               INSERT INTO test.t VALUES (1, 'één'), (2, NULL); \
               SELECT id, v FROM test.t ORDER BY id; \
               SELECT REPEAT(MD5('x'), 655360) AS twenty_mib; \
               SELECT 'after' AS still_in_step";
    let through = via(&proxy.addr, &["-B", "--max-allowed-packet=64M", "-e", sql]);
    let direct = via(
        &s.pair.blue.addr(),
        &[
            "-B",
            "--max-allowed-packet=64M",
            "-e",
            &sql.replace("test.t", "test.t2"),
        ],
    );
    assert!(through.len() > 20 << 20, "{} bytes", through.len());
    assert!(
        through == direct,
        "through the proxy and directly differ ({} and {} bytes)",
        through.len(),
        direct.len()
    );
}

/// A PyMySQL script under verified TLS (`SWITCHYARD_TLS_CA`) through the proxy and
/// directly; its output.
fn py_over_tls(s: &Setup, proxy: &Proxy, script: &str, flavor: Flavor) -> String {
    let out = support::py_script(script, &proxy.addr, s.pair.blue.port, flavor)
        .env("SWITCHYARD_TLS_CA", &s.ca.ca)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} over TLS failed ({}):\n{stdout}{}\nproxy log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
    eprint!("{stdout}");
    stdout
}

/// The `sha256=` fingerprint tls.py printed for the connection to `port`.
fn peer_fingerprint(output: &str, port: &str) -> String {
    output
        .lines()
        .find(|l| l.starts_with(&format!("peer {port} ")))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("sha256=")))
        .unwrap_or_else(|| panic!("no peer line for port {port} in:\n{output}"))
        .to_owned()
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').expect("HOST:PORT").1
}

/// PyMySQL with an `ssl.SSLContext` (CERT_REQUIRED, the test's CA, name checked):
/// the proxy presents its own certificate, the server its own; same answers.
fn pymysql_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    let out = py_over_tls(&s, &proxy, "tls.py", flavor);
    assert_eq!(
        peer_fingerprint(&out, port_of(&proxy.addr)),
        s.proxy_cert.fingerprint
    );
    assert_eq!(
        peer_fingerprint(&out, &s.pair.blue.port.to_string()),
        s.server_cert.fingerprint
    );
}

/// A 20 MiB blob written and read, and LOAD DATA LOCAL INFILE, over TLS: the scripts
/// compare every answer with a direct TLS connection.
fn pymysql_20_mib_and_load_data_local_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    py_over_tls(&s, &proxy, "blob.py", flavor);
    py_over_tls(&s, &proxy, "writes.py", flavor);
}

for_each_flavor!(
    cli_over_tls,
    pymysql_over_tls,
    pymysql_20_mib_and_load_data_local_over_tls
);

/// mysql_async's options for TLS verified with `ca` only (no built-in roots).
fn ssl_opts(ca: &Path) -> SslOpts {
    SslOpts::default()
        .with_root_certs(vec![ca.to_path_buf().into()])
        .with_disable_built_in_roots(true)
}

/// mysql_async with rustls: text and prepared statements through the proxy; a client
/// that does not trust the proxy's CA is refused by its own verification.
async fn mysql_async_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    let mut conn = app_conn_with(&proxy.addr, Some(s.ssl())).await;
    let got: Vec<(u32, String)> = conn
        .exec("SELECT ? + 1, CONCAT(?, 'b')", (41, "a"))
        .await
        .expect("a prepared statement over TLS");
    assert_eq!(got, vec![(42, "ab".to_owned())]);
    let backend: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_version'")
        .await
        .expect("SHOW STATUS");
    let backend = backend.map(|(_, v)| v).unwrap_or_default();
    assert!(backend.starts_with("TLS"), "backend leg: {backend:?}");
    conn.disconnect().await.expect("disconnect");

    let stranger = TestCa::new("another CA");
    let (host, port) = proxy.addr.rsplit_once(':').expect("HOST:PORT");
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("port"))
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .prefer_socket(false)
        .ssl_opts(ssl_opts(&stranger.ca));
    let refused = tokio::time::timeout(Duration::from_secs(10), Conn::new(opts))
        .await
        .expect("a client distrusting the proxy hangs");
    match refused {
        Ok(_) => panic!("a client with another CA logged in"),
        Err(err) => eprintln!("a client with another CA: {err}"),
    }
}

for_each_flavor_async!(mysql_async_over_tls);
