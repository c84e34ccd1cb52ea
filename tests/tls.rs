//! TLS end to end, on MariaDB and MySQL 9.7 pairs whose servers use a CA the test
//! makes (tests/support/tls.rs): the servers directly first (the harness itself,
//! and what a server answers a plaintext login when it requires TLS), then through
//! the proxy, with its own certificate from the same CA and the backend leg on TLS.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, SslOpts};
use switchyard::protocol::constants::{CLIENT_SSL, UTF8MB4_GENERAL_CI};
use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

use support::load::{app_conn_with, app_opts, there_and_back_with};
use support::raw::{hex, Raw, BASE_CAPS};
use support::tls::{cli_with, status_args, status_cipher, tls_cli, tls_pair_of, Issued, TestCa};
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
               SELECT REPEAT('0123456789abcdef', 1310720) AS twenty_mib; \
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

/// `[tls] min_version`: a client capped at TLS 1.2 gets in by default, and is
/// refused in the TLS handshake with `min_version = "1.3"` — told why by the
/// protocol_version alert, also when its ClientHello came in one read with the
/// SSLRequest.
fn tls_min_version(flavor: Flavor) {
    let s = setup(flavor);
    let default = s.proxy("");
    let out = py_over_tls(&s, &default, "tls_version.py", flavor);
    assert_eq!(out.trim(), "version=TLSv1.2");
    let strict = s.proxy("min_version = \"1.3\"");
    for _ in 0..4 {
        let out = py_over_tls(&s, &strict, "tls_version.py", flavor);
        assert!(
            out.starts_with("refused: ") && out.contains("ALERT_PROTOCOL_VERSION"),
            "{out}"
        );
    }
}

/// Types, errors and KILL over TLS (the proxy's KILL reaches the server on a
/// connection of its own, TLS too), each answer compared with a direct TLS connection.
fn pymysql_queries_and_kill_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    py_over_tls(&s, &proxy, "queries.py", flavor);
    py_over_tls(&s, &proxy, "kill.py", flavor);
}

for_each_flavor!(
    cli_over_tls,
    pymysql_over_tls,
    pymysql_20_mib_and_load_data_local_over_tls,
    pymysql_queries_and_kill_over_tls,
    tls_min_version
);

/// mysql_async's options for TLS verified with `ca` only (no built-in roots).
fn ssl_opts(ca: &Path) -> SslOpts {
    support::tls::ssl_opts(ca)
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
    let opts = app_opts(&proxy.addr).ssl_opts(ssl_opts(&stranger.ca));
    let refused = tokio::time::timeout(Duration::from_secs(10), Conn::new(opts))
        .await
        .expect("a client distrusting the proxy hangs");
    match refused {
        Ok(_) => panic!("a client with another CA logged in"),
        Err(err) => eprintln!("a client with another CA: {err}"),
    }
}

for_each_flavor_async!(mysql_async_over_tls);

/// `[tls] require_secure_transport = true`: a plaintext login through the proxy gets
/// exactly the ERR packet the server gives one (same sequence id and payload), the
/// command-line client prints the same error as directly; TLS logins go on working.
fn require_secure_transport(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("require_secure_transport = true");
    // Log in over TLS first, everywhere: MySQL's fast path then finds the account
    // cached, on the server and through the proxy alike.
    for addr in [proxy.addr.clone(), s.pair.blue.addr()] {
        let run = tls_cli(
            flavor,
            &addr,
            APP_USER,
            APP_PASSWORD,
            &s.ca.ca,
            &["-e", "SELECT 1"],
        );
        assert!(
            run.ok,
            "TLS login to {addr}: {}\nproxy log:\n{}",
            run.stderr,
            proxy.log()
        );
    }
    let direct = plaintext_refusal(&s.pair.blue.addr());
    let through = plaintext_refusal(&proxy.addr);
    assert!(
        through == direct,
        "plaintext login refused differently:\n through the proxy seq {} {}\n directly          \
         seq {} {}",
        through.0,
        hex(&through.1),
        direct.0,
        hex(&direct.1)
    );
    let said = |addr: &str| {
        let out = support::cli(
            flavor,
            addr,
            APP_USER,
            APP_PASSWORD,
            None,
            &["-e", "SELECT 1"],
            None,
        );
        assert!(
            !out.status.success(),
            "a plaintext login to {addr} succeeded"
        );
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("[Warning]"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(said(&proxy.addr), said(&s.pair.blue.addr()));
}

/// A client asking for TLS from a proxy without `[tls]`: a clean error at once, not
/// a hang — the command-line client insisting on TLS (`--ssl --ssl-verify-server-cert`,
/// `--ssl-mode=REQUIRED`) refuses itself, as with a server without TLS; MariaDB's
/// `--ssl` alone falls back to plaintext on the proxy as on such a server; and a raw
/// SSLRequest sent although the greeting did not offer TLS gets an ERR and a close.
fn ssl_request_without_tls_is_refused(flavor: Flavor) {
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let insist: &[&str] = match flavor {
        Flavor::MariaDb => &["--ssl", "--ssl-verify-server-cert"],
        Flavor::MySql => &["--ssl-mode=REQUIRED"],
    };
    let start = Instant::now();
    let run = cli_with(
        flavor,
        &proxy.addr,
        APP_USER,
        APP_PASSWORD,
        insist,
        &["-e", "SELECT 1"],
    );
    let took = start.elapsed();
    assert!(
        !run.ok,
        "a TLS login without [tls] succeeded: {}",
        run.stdout
    );
    assert!(took < Duration::from_secs(5), "the client waited {took:?}");
    eprintln!(
        "{} client insisting on TLS: {}",
        flavor.name(),
        run.stderr.trim()
    );
    if flavor == Flavor::MariaDb {
        // blue has no TLS either (MariaDB 10.11 without certificates).
        let outcome = |addr: &str| {
            let run = cli_with(
                flavor,
                addr,
                APP_USER,
                APP_PASSWORD,
                &["--ssl"],
                &["-e", "SELECT 1"],
            );
            (run.ok, run.stdout)
        };
        assert_eq!(
            outcome(&proxy.addr),
            outcome(&pair.blue.addr()),
            "mariadb --ssl"
        );
    }

    let (seq, payload) = raw_ssl_request(&proxy.addr);
    assert_eq!(seq, 2, "{}", hex(&payload));
    assert_eq!(payload.first(), Some(&0xFF), "{}", hex(&payload));
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    eprintln!(
        "raw SSLRequest: ERR {code} {}",
        String::from_utf8_lossy(&payload[3..])
    );
}

for_each_flavor!(require_secure_transport, ssl_request_without_tls_is_refused);

/// Read the greeting at `addr`, send an SSLRequest (whatever it offered) and return
/// the answer packet's sequence id and payload; the connection must then close.
fn raw_ssl_request(addr: &str) -> (u8, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let read_packet = |stream: &mut TcpStream| -> (u8, Vec<u8>) {
        let mut head = [0u8; 4];
        stream.read_exact(&mut head).expect("a packet header");
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("a packet payload");
        (head[3], payload)
    };
    read_packet(&mut stream);
    stream
        .write_all(&ssl_request())
        .expect("send the SSLRequest");
    let answer = read_packet(&mut stream);
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)),
        "the connection stayed open after the refusal: {closed:?} {}",
        hex(&rest)
    );
    answer
}

/// An SSLRequest packet (sequence id 1): the first 32 bytes of a HandshakeResponse41.
fn ssl_request() -> Vec<u8> {
    let caps = BASE_CAPS | CLIENT_SSL;
    let mut request = Vec::with_capacity(36);
    request.extend_from_slice(&[32, 0, 0, 1]);
    request.extend_from_slice(&caps.to_le_bytes());
    request.extend_from_slice(&(1u32 << 24).to_le_bytes());
    request.push(UTF8MB4_GENERAL_CI);
    request.extend_from_slice(&[0u8; 23]);
    request
}

/// A client that goes quiet after its SSLRequest, or halfway through its
/// ClientHello, is hung up on at `handshake_timeout`, not held forever.
fn stalled_tls_handshake_ends_at_handshake_timeout(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s
        .builder("")
        .proxy_key("handshake_timeout", "\"1s\"")
        .start();
    let half_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    for (what, after) in [
        ("the SSLRequest", &[][..]),
        ("half a ClientHello", half_hello),
    ] {
        let mut stream = TcpStream::connect(&proxy.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut greeting = [0u8; 1024];
        let n = stream.read(&mut greeting).expect("the greeting");
        assert!(n > 4, "no greeting");
        stream
            .write_all(&ssl_request())
            .expect("send the SSLRequest");
        stream.write_all(after).expect("send the rest");
        let start = Instant::now();
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest);
        let took = start.elapsed();
        assert!(
            end.is_ok() && took > Duration::from_millis(500) && took < Duration::from_secs(5),
            "silent after {what}: {end:?} after {took:?}"
        );
        eprintln!("silent after {what}: closed after {took:?}");
    }
}

for_each_flavor!(stalled_tls_handshake_ends_at_handshake_timeout);

/// Replace the proxy's certificate and key files, `ctl reload`: new sessions get the
/// new certificate, a session opened before keeps working on its connection.
async fn certificate_rotation(flavor: Flavor) {
    let s = setup(flavor);
    let proxy = s.proxy("");
    let mut open = app_conn_with(&proxy.addr, Some(s.ssl())).await;
    let id = open.id();
    let first = tokio::task::block_in_place(|| py_over_tls(&s, &proxy, "tls.py", flavor));
    assert_eq!(
        peer_fingerprint(&first, port_of(&proxy.addr)),
        s.proxy_cert.fingerprint
    );

    let rotated = s.ca.reissue_server(&s.proxy_cert);
    assert_ne!(rotated.fingerprint, s.proxy_cert.fingerprint);
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(ok, "ctl reload: {out}\nproxy log:\n{}", proxy.log());

    let second = tokio::task::block_in_place(|| py_over_tls(&s, &proxy, "tls.py", flavor));
    assert_eq!(
        peer_fingerprint(&second, port_of(&proxy.addr)),
        rotated.fingerprint,
        "a new session after the reload got the old certificate"
    );
    let got: Option<u32> = open
        .query_first("SELECT 7")
        .await
        .unwrap_or_else(|e| panic!("the session opened before the reload: {e}"));
    assert_eq!(got, Some(7));
    assert_eq!(open.id(), id);

    // A certificate file that cannot be used: the reload fails, the one in force stays.
    std::fs::write(&rotated.cert, "not a certificate\n").expect("spoil the certificate");
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(!ok, "a reload with a broken certificate succeeded: {out}");
    eprintln!("reload with a broken certificate: {}", out.trim());
    let third = tokio::task::block_in_place(|| py_over_tls(&s, &proxy, "tls.py", flavor));
    assert_eq!(
        peer_fingerprint(&third, port_of(&proxy.addr)),
        rotated.fingerprint,
        "after a failed reload"
    );
}

/// Backend verification: a `tls_ca` that did not sign the servers' certificate, or a
/// `tls_server_name` the certificate does not name, makes logins through the proxy
/// fail with an error naming the server and the reason.
async fn backend_verification_failures(flavor: Flavor) {
    let s = setup(flavor);
    let stranger = TestCa::new("a CA the servers never saw");
    let cases = [
        (
            "a foreign tls_ca",
            Proxy::builder(&s.pair)
                .client_tls(&s.proxy_cert, "")
                .backend_tls(&stranger.ca),
        ),
        (
            "a tls_server_name the certificate lacks",
            s.builder("")
                .backend_key("tls_server_name", "\"db.example.com\""),
        ),
    ];
    for (what, builder) in cases {
        let proxy = builder.start();
        let opts = app_opts(&proxy.addr).ssl_opts(s.ssl());
        let attempt = tokio::time::timeout(Duration::from_secs(20), Conn::new(opts))
            .await
            .unwrap_or_else(|_| panic!("{what}: the login hangs"));
        let err = match attempt {
            Ok(_) => panic!("{what}: logged in through an unverifiable backend"),
            Err(e) => e.to_string(),
        };
        let log = proxy.log();
        eprintln!("{what}: the client saw: {err}");
        let blue = s.pair.blue.addr();
        assert!(
            err.contains(&blue),
            "{what}: the client's error does not name the server ({blue}): {err}"
        );
        assert!(
            ["certificate", "UnknownIssuer", "NotValidForName"]
                .iter()
                .any(|w| err.contains(w)),
            "{what}: the client's error gives no reason: {err}\nproxy log:\n{log}"
        );
    }
}

/// Switchovers there and back under the standard workload, every client on TLS to
/// the proxy and the proxy on TLS to both servers (which refuse plaintext): no client
/// error, and every client keeps its connection. The replication the proxy set up
/// for the way back (green following blue again at the end) runs over TLS, checking
/// the source's certificate against `[replication] tls_ca`.
async fn switchover_under_load_over_tls(flavor: Flavor) {
    let s = setup(flavor);
    let ca = format!("\"{}\"", s.ca.ca.display());
    let proxy = s.builder("").replication_key("tls_ca", &ca).start();
    // Sessions idle through both switchovers, beside the workload's.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(app_conn_with(&proxy.addr, Some(s.ssl())).await);
    }
    let before = tls_sessions(&proxy).await;
    assert_eq!(before.len(), 2, "ctl sessions before: {before:?}");
    there_and_back_with(
        &s.pair,
        &proxy,
        &format!("{} over TLS", flavor.name()),
        Some(s.ssl()),
    )
    .await;
    let status = s.pair.slave_status().expect("green's replica status");
    let column = |name: &str| {
        status
            .get(&flavor.status_column(name))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        (column("Master_SSL_Allowed"), column("Slave_IO_Running")),
        ("Yes".to_owned(), "Yes".to_owned()),
        "green's replication after the way back: {status:?}"
    );
    assert_eq!(
        column("Master_SSL_Verify_Server_Cert"),
        "Yes",
        "green checks blue's certificate after the way back: {status:?}"
    );
    let after = tls_sessions(&proxy).await;
    for (conn, id) in idle.iter_mut().zip(&before) {
        assert!(after.contains(id), "session {id} is gone: {after:?}");
        let got: Option<u32> = conn
            .query_first("SELECT @@server_id")
            .await
            .unwrap_or_else(|e| panic!("idle session {id} after the switchovers: {e}"));
        assert_eq!(got, Some(s.pair.blue.server_id));
    }
}

/// The ids of the sessions `ctl sessions` lists; each must be marked `tls`.
async fn tls_sessions(proxy: &Proxy) -> Vec<String> {
    let (ok, out) = proxy.ctl_async(&["sessions"]).await;
    assert!(ok, "ctl sessions: {out}");
    out.lines()
        .filter(|l| l.contains(" user="))
        .map(|l| {
            assert!(l.contains(" tls "), "a session without TLS: {l}");
            l.split_whitespace().next().unwrap_or_default().to_owned()
        })
        .collect()
}

for_each_flavor_async!(
    certificate_rotation,
    backend_verification_failures,
    switchover_under_load_over_tls
);

/// `tls_cert`/`tls_key`: the proxy presents a client certificate from the test's CA
/// to the servers, so an account created `REQUIRE X509` logs in through it; without
/// them the server refuses that account and the client gets the server's error.
async fn backend_client_certificate(flavor: Flavor) {
    let s = setup(flavor);
    let client = s.ca.client("proxy-client", "switchyard");
    s.pair
        .blue
        .sql(
            "CREATE USER 'x509'@'%' IDENTIFIED BY 'x509-secret' REQUIRE X509;\n\
             GRANT ALL ON test.* TO 'x509'@'%';",
        )
        .expect("create the REQUIRE X509 account");
    s.pair
        .wait_green_caught_up(Duration::from_secs(30))
        .expect("green has the account");
    let users = format!(
        "[[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n\n\
         [[users]]\nname = \"x509\"\npassword = \"x509-secret\"\n"
    );
    let with_cert = s
        .builder("")
        .users(&users)
        .backend_key("tls_cert", &format!("\"{}\"", client.cert.display()))
        .backend_key("tls_key", &format!("\"{}\"", client.key.display()))
        .start();
    let without = s.builder("").users(&users).start();
    let x509 = |addr: &str| {
        app_opts(addr)
            .user(Some("x509"))
            .pass(Some("x509-secret"))
            .ssl_opts(s.ssl())
    };
    let mut conn = Conn::new(x509(&with_cert.addr))
        .await
        .unwrap_or_else(|e| panic!("x509 through a proxy with a client certificate: {e}"));
    let user: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .expect("CURRENT_USER()");
    assert_eq!(user.as_deref(), Some("x509@%"));
    conn.disconnect().await.expect("disconnect");
    match Conn::new(x509(&without.addr)).await {
        Ok(_) => panic!("a REQUIRE X509 account logged in without a client certificate"),
        Err(e) => eprintln!("without tls_cert: {e}"),
    }
}

for_each_flavor_async!(backend_client_certificate);
