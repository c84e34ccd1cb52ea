//! Authentication at the proxy: accounts from `password`, `password_hash` or the
//! backend's `mysql.user`; caching_sha2_password clients take its fast path when the
//! proxy knows the password, clients asking for other plugins are switched to
//! `mysql_native_password`; refusals look like the database's own (1045, and the
//! backend's 1044 passed through).

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::testbed::{APP_PASSWORD, APP_USER};

fn opts(addr: &str, user: &str, pass: Option<&str>, db: Option<&str>) -> OptsBuilder {
    let (host, port) = addr.rsplit_once(':').expect("address is HOST:PORT");
    OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port.parse().expect("numeric port"))
        .user(Some(user.to_owned()))
        .pass(pass.map(str::to_owned))
        .db_name(db.map(str::to_owned))
        .prefer_socket(false)
}

async fn try_connect(
    addr: &str,
    user: &str,
    pass: Option<&str>,
    db: Option<&str>,
) -> Result<Conn, mysql_async::Error> {
    Conn::new(opts(addr, user, pass, db)).await
}

/// Logs in and returns `CURRENT_USER()`.
async fn current_user(addr: &str, user: &str, pass: Option<&str>, db: Option<&str>) -> String {
    let mut conn = try_connect(addr, user, pass, db)
        .await
        .unwrap_or_else(|e| panic!("{user} cannot log in through {addr}: {e}"));
    let me: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    conn.disconnect().await.unwrap();
    me.expect("one row")
}

/// (code, SQLSTATE, message) of a refused login.
async fn refusal(
    addr: &str,
    user: &str,
    pass: Option<&str>,
    db: Option<&str>,
) -> (u16, String, String) {
    match try_connect(addr, user, pass, db).await {
        Ok(_) => panic!("{user} with password {pass:?} logged in through {addr}"),
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        Err(other) => panic!("{user} through {addr}: not a server error: {other}"),
    }
}

fn user_entry(name: &str, key: &str, value: &str) -> String {
    format!("[[users]]\nname = \"{name}\"\n{key} = \"{value}\"\n")
}

#[tokio::test]
async fn a_password_hash_from_mysql_user_is_enough() {
    let pair = support::pair();
    let hash = pair
        .blue
        .sql("SELECT Password FROM mysql.user WHERE User = 'app' ORDER BY Host = '%' DESC LIMIT 1")
        .unwrap();
    let hash = hash.trim();
    assert!(
        hash.starts_with('*') && hash.len() == 41,
        "hash of app: {hash:?}"
    );
    let proxy = support::Proxy::builder(&pair)
        .users(&user_entry(APP_USER, "password_hash", hash))
        .start();

    assert_eq!(
        current_user(&proxy.addr, APP_USER, Some(APP_PASSWORD), Some("test")).await,
        "app@%"
    );
    // The proxy logged in to blue with what it learned from the client's answer.
    let mut conn = try_connect(&proxy.addr, APP_USER, Some(APP_PASSWORD), Some("test"))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE test.h (x INT)")
        .await
        .unwrap();
    conn.exec_drop("INSERT INTO test.h VALUES (?)", (3,))
        .await
        .unwrap();
    assert_eq!(pair.blue.sql("SELECT x FROM test.h").unwrap(), "3\n");
    conn.disconnect().await.unwrap();

    let (code, state, _) = refusal(
        &proxy.addr,
        APP_USER,
        Some("not-the-password"),
        Some("test"),
    )
    .await;
    assert_eq!((code, state.as_str()), (1045, "28000"));
}

/// Reads an AuthSwitchRequest: (plugin, scramble).
fn read_switch(conn: &mut raw::Raw, expected_seq: u8, what: &str) -> (String, Vec<u8>) {
    let (seq, switch) = conn.read_packet().unwrap();
    assert_eq!(seq, expected_seq, "{what}");
    assert_eq!(
        switch.first(),
        Some(&0xFE),
        "{what}: expected AuthSwitchRequest, got {switch:?}"
    );
    let name_end = switch
        .iter()
        .position(|b| *b == 0)
        .expect("NUL after the plugin name");
    let plugin = String::from_utf8_lossy(&switch[1..name_end]).into_owned();
    let data = &switch[name_end + 1..];
    let scramble = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
    assert_eq!(scramble.len(), 20, "{what}: scramble {scramble:?}");
    (plugin, scramble)
}

/// Reads the OK that ends a login at `seq` and checks who is logged in.
fn assert_logged_in(conn: &mut raw::Raw, seq: u8, what: &str) {
    let (got, ok) = conn.read_packet().unwrap();
    assert_eq!(ok.first(), Some(&0x00), "{what}: expected OK, got {ok:?}");
    assert_eq!(got, seq, "{what}");
    assert_eq!(
        conn.query("SELECT CURRENT_USER(), DATABASE()").unwrap(),
        vec![vec![Some("app@%".to_owned()), Some("test".to_owned())]],
        "{what}"
    );
}

#[test]
fn other_plugins_are_switched_to_native_password() {
    let pair = support::pair();
    let mut proxy = support::Proxy::start(&pair, "");

    let cases: [(&str, Vec<u8>, bool); 2] = [
        ("client_ed25519", vec![0xEE; 64], false),
        ("sha256_password", vec![1], true),
    ];
    for (plugin, junk, lenenc) in cases {
        let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
        conn.greeting().unwrap();
        let response = raw::handshake_response(APP_USER, &junk, Some("test"), plugin, lenenc);
        conn.write_packet(1, &response).unwrap();
        let (switched_to, scramble) = read_switch(&mut conn, 2, plugin);
        assert_eq!(switched_to, "mysql_native_password", "{plugin}");
        conn.write_packet(3, &raw::native_token(APP_PASSWORD, &scramble))
            .unwrap();
        assert_logged_in(&mut conn, 4, plugin);
    }

    // A wrong password after the switch is refused with 1045.
    let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
    conn.greeting().unwrap();
    let response =
        raw::handshake_response(APP_USER, &[9; 64], Some("test"), "client_ed25519", false);
    conn.write_packet(1, &response).unwrap();
    let (_, scramble) = read_switch(&mut conn, 2, "wrong password");
    conn.write_packet(3, &raw::native_token("wrong", &scramble))
        .unwrap();
    let (_, err) = conn.read_packet().unwrap();
    assert_eq!(raw::err_code(&err), Some(1045), "{err:?}");
    assert!(proxy.is_running());
}

/// caching_sha2_password clients, for an account whose password the proxy knows, are
/// checked on the fast path (`0x01 0x03`, then OK) and never asked for full
/// authentication; with only a native hash they are switched to native.
#[test]
fn a_caching_sha2_client_takes_the_fast_path() {
    let pair = support::pair();
    let hash = pair
        .blue
        .sql("SELECT Password FROM mysql.user WHERE User = 'app' ORDER BY Host = '%' DESC LIMIT 1")
        .unwrap();
    let users = format!(
        "{}{}",
        user_entry(APP_USER, "password", APP_PASSWORD),
        user_entry("app_hash_only", "password_hash", hash.trim()),
    );
    pair.blue
        .sql(&format!(
            "CREATE USER app_hash_only@'%' IDENTIFIED BY '{APP_PASSWORD}'; \
             GRANT ALL ON test.* TO app_hash_only@'%'"
        ))
        .unwrap();
    let mut proxy = support::Proxy::builder(&pair).users(&users).start();
    let fast_auth_ok = [1u8, 3];

    // The answer to the greeting's scramble.
    let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
    let scramble = conn.greeting().unwrap();
    let token = raw::caching_sha2_token(APP_PASSWORD, &scramble);
    let response = raw::handshake_response(
        APP_USER,
        &token,
        Some("test"),
        "caching_sha2_password",
        true,
    );
    conn.write_packet(1, &response).unwrap();
    assert_eq!(conn.read_packet().unwrap(), (2, fast_auth_ok.to_vec()));
    assert_logged_in(&mut conn, 3, "fast path");

    // No answer yet (the client did not take the greeting's scramble): asked again.
    let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
    conn.greeting().unwrap();
    let response =
        raw::handshake_response(APP_USER, &[], Some("test"), "caching_sha2_password", true);
    conn.write_packet(1, &response).unwrap();
    let (plugin, scramble) = read_switch(&mut conn, 2, "empty first answer");
    assert_eq!(plugin, "caching_sha2_password");
    conn.write_packet(3, &raw::caching_sha2_token(APP_PASSWORD, &scramble))
        .unwrap();
    assert_eq!(conn.read_packet().unwrap(), (4, fast_auth_ok.to_vec()));
    assert_logged_in(&mut conn, 5, "after the switch");

    // A wrong token: 1045 at once, never a request for the password.
    let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
    let scramble = conn.greeting().unwrap();
    let token = raw::caching_sha2_token("wrong", &scramble);
    let response = raw::handshake_response(
        APP_USER,
        &token,
        Some("test"),
        "caching_sha2_password",
        true,
    );
    conn.write_packet(1, &response).unwrap();
    let (seq, err) = conn.read_packet().unwrap();
    assert_eq!((seq, raw::err_code(&err)), (2, Some(1045)), "{err:?}");

    // Only a native hash: switched to mysql_native_password.
    let mut conn = raw::Raw::connect(&proxy.addr).unwrap();
    let scramble = conn.greeting().unwrap();
    let token = raw::caching_sha2_token(APP_PASSWORD, &scramble);
    let response = raw::handshake_response(
        "app_hash_only",
        &token,
        Some("test"),
        "caching_sha2_password",
        true,
    );
    conn.write_packet(1, &response).unwrap();
    let (plugin, scramble) = read_switch(&mut conn, 2, "hash only");
    assert_eq!(plugin, "mysql_native_password");
    conn.write_packet(3, &raw::native_token(APP_PASSWORD, &scramble))
        .unwrap();
    let (seq, ok) = conn.read_packet().unwrap();
    assert_eq!((seq, ok.first()), (4, Some(&0x00)), "{ok:?}");
    assert_eq!(
        conn.query("SELECT CURRENT_USER()").unwrap(),
        vec![vec![Some("app_hash_only@%".to_owned())]]
    );
    assert!(proxy.is_running());
}

#[tokio::test]
async fn accounts_load_from_the_backend_including_ones_created_later() {
    let pair = support::pair();
    let proxy = support::Proxy::builder(&pair)
        .users("")
        .toml("[auth]\nload_from_backend = true\nrefresh_interval = \"100ms\"\n")
        .start();
    // app comes from blue's mysql.user: there is no [[users]] at all.
    assert_eq!(
        current_user(&proxy.addr, APP_USER, Some(APP_PASSWORD), Some("test")).await,
        "app@%"
    );

    pair.blue
        .sql(
            "CREATE USER late@'%' IDENTIFIED BY 'pw'; GRANT ALL ON test.* TO late@'%'; \
             CREATE USER late_nopw@'%'; GRANT ALL ON test.* TO late_nopw@'%';",
        )
        .unwrap();
    // Let the refresh interval pass since the proxy's last load (a rate limit, not a
    // timing assumption about the proxy).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        current_user(&proxy.addr, "late", Some("pw"), Some("test")).await,
        "late@%"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        current_user(&proxy.addr, "late_nopw", None, Some("test")).await,
        "late_nopw@%"
    );

    let (code, _, _) = refusal(&proxy.addr, "late", Some("not-pw"), Some("test")).await;
    assert_eq!(code, 1045);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _, _) = refusal(&proxy.addr, "nobody_at_all", Some("pw"), None).await;
    assert_eq!(code, 1045);

    // A password changed on blue is picked up as well.
    pair.blue
        .sql("ALTER USER late@'%' IDENTIFIED BY 'pw2'")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        current_user(&proxy.addr, "late", Some("pw2"), Some("test")).await,
        "late@%"
    );
    let (code, _, _) = refusal(&proxy.addr, "late", Some("pw"), Some("test")).await;
    assert_eq!(code, 1045);
}

#[tokio::test]
async fn a_wrong_password_gets_1045_like_from_the_database() {
    let pair = support::pair();
    let proxy = support::Proxy::start(&pair, "");
    let blue = pair.blue.addr();

    for (user, pass) in [
        (APP_USER, Some("wrong")),
        (APP_USER, None),
        (APP_USER, Some("")),
        ("no_such_user", Some("x")),
    ] {
        let via_proxy = refusal(&proxy.addr, user, pass, Some("test")).await;
        let direct = refusal(&blue, user, pass, Some("test")).await;
        assert_eq!(via_proxy.0, 1045, "{user}/{pass:?}: {via_proxy:?}");
        assert_eq!(via_proxy.1, direct.1, "{user}/{pass:?}: SQLSTATE");
        assert_eq!(via_proxy.2, direct.2, "{user}/{pass:?}: message");
    }
    // Refusals leave the proxy serving.
    assert_eq!(
        current_user(&proxy.addr, APP_USER, Some(APP_PASSWORD), None).await,
        "app@%"
    );
}

#[tokio::test]
async fn an_account_without_password_logs_in() {
    let pair = support::pair();
    pair.blue
        .sql(
            "CREATE USER nopw@'%'; GRANT ALL ON test.* TO nopw@'%'; \
             CREATE USER nopw2@'%'; GRANT ALL ON test.* TO nopw2@'%';",
        )
        .unwrap();
    let users = format!(
        "{}{}{}",
        user_entry(APP_USER, "password", APP_PASSWORD),
        user_entry("nopw", "password", ""),
        user_entry("nopw2", "password_hash", ""),
    );
    let proxy = support::Proxy::builder(&pair).users(&users).start();

    assert_eq!(
        current_user(&proxy.addr, "nopw", None, Some("test")).await,
        "nopw@%"
    );
    assert_eq!(
        current_user(&proxy.addr, "nopw", Some(""), None).await,
        "nopw@%"
    );
    assert_eq!(
        current_user(&proxy.addr, "nopw2", None, Some("test")).await,
        "nopw2@%"
    );
    let via_proxy = refusal(&proxy.addr, "nopw", Some("something"), Some("test")).await;
    let direct = refusal(&pair.blue.addr(), "nopw", Some("something"), Some("test")).await;
    assert_eq!(via_proxy.0, 1045);
    assert_eq!(via_proxy.0, direct.0);
}

#[tokio::test]
async fn grants_that_deny_the_database_give_the_backends_1044() {
    let pair = support::pair();
    pair.blue
        .sql("CREATE USER nodb@'%' IDENTIFIED BY 'pw'")
        .unwrap();
    let users = format!(
        "{}{}",
        user_entry(APP_USER, "password", APP_PASSWORD),
        user_entry("nodb", "password", "pw"),
    );
    let proxy = support::Proxy::builder(&pair).users(&users).start();

    let via_proxy = refusal(&proxy.addr, "nodb", Some("pw"), Some("test")).await;
    let direct = refusal(&pair.blue.addr(), "nodb", Some("pw"), Some("test")).await;
    assert_eq!(via_proxy.0, 1044, "{via_proxy:?}");
    assert_eq!(
        via_proxy, direct,
        "the backend's ERR must reach the client unchanged"
    );

    // Without a database the login works; choosing it later is refused the same way.
    let mut conn = try_connect(&proxy.addr, "nodb", Some("pw"), None)
        .await
        .unwrap();
    let me: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(me.as_deref(), Some("nodb@%"));
    let err = conn.query_drop("USE test").await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1044, "{e}"),
        other => panic!("USE test: {other}"),
    }
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    conn.disconnect().await.unwrap();
}

/// Just enough of the client side of the protocol for the plugin switch: framing, the
/// greeting, HandshakeResponse41 and text queries (without CLIENT_DEPRECATE_EOF).
mod raw {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use sha1::{Digest, Sha1};
    use sha2::Sha256;

    const CLIENT_LONG_PASSWORD: u32 = 1;
    const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
    const CLIENT_PROTOCOL_41: u32 = 1 << 9;
    const CLIENT_TRANSACTIONS: u32 = 1 << 13;
    const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
    const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
    const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
    const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;

    pub struct Raw {
        stream: TcpStream,
    }

    impl Raw {
        pub fn connect(addr: &str) -> io::Result<Raw> {
            let stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(Duration::from_secs(20)))?;
            stream.set_nodelay(true)?;
            Ok(Raw { stream })
        }

        pub fn read_packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
            let mut head = [0u8; 4];
            self.stream.read_exact(&mut head)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload)?;
            Ok((head[3], payload))
        }

        pub fn write_packet(&mut self, seq: u8, payload: &[u8]) -> io::Result<()> {
            let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
            out.push(seq);
            out.extend_from_slice(payload);
            self.stream.write_all(&out)
        }

        /// Reads and checks the greeting; returns its 20-byte scramble.
        pub fn greeting(&mut self) -> io::Result<Vec<u8>> {
            let (_, p) = self.read_packet()?;
            let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a greeting");
            if p.first() != Some(&0x0a) {
                return Err(bad());
            }
            let mut pos = 1 + p[1..].iter().position(|b| *b == 0).ok_or_else(bad)? + 1;
            pos += 4; // connection id
            let mut scramble = p.get(pos..pos + 8).ok_or_else(bad)?.to_vec();
            pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10; // scramble 1, flags, reserved
            scramble.extend_from_slice(p.get(pos..pos + 12).ok_or_else(bad)?);
            Ok(scramble)
        }

        /// Text rows of a one-result COM_QUERY; panics on ERR.
        pub fn query(&mut self, sql: &str) -> io::Result<Vec<Vec<Option<String>>>> {
            let mut packet = vec![0x03];
            packet.extend_from_slice(sql.as_bytes());
            self.write_packet(0, &packet)?;
            let (_, first) = self.read_packet()?;
            assert_ne!(first.first(), Some(&0xFF), "{sql}: {first:?}");
            let columns = usize::from(first[0]);
            for _ in 0..=columns {
                self.read_packet()?; // definitions, then EOF
            }
            let mut rows = Vec::new();
            loop {
                let (_, p) = self.read_packet()?;
                if p.first() == Some(&0xFE) && p.len() < 9 {
                    return Ok(rows);
                }
                let mut pos = 0;
                let mut row = Vec::new();
                for _ in 0..columns {
                    if p[pos] == 0xFB {
                        row.push(None);
                        pos += 1;
                    } else {
                        let len = usize::from(p[pos]); // short values only
                        row.push(Some(
                            String::from_utf8_lossy(&p[pos + 1..pos + 1 + len]).into_owned(),
                        ));
                        pos += 1 + len;
                    }
                }
                rows.push(row);
            }
        }
    }

    pub fn err_code(p: &[u8]) -> Option<u16> {
        match p {
            [0xFF, a, b, ..] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    /// SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw))).
    pub fn native_token(password: &str, scramble: &[u8]) -> Vec<u8> {
        let stage1 = Sha1::digest(password.as_bytes());
        let stage2 = Sha1::digest(stage1);
        let mut h = Sha1::new();
        h.update(scramble);
        h.update(stage2);
        let mix = h.finalize();
        stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
    }

    /// XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) ‖ scramble)): what a
    /// caching_sha2_password client sends on its fast path.
    pub fn caching_sha2_token(password: &str, scramble: &[u8]) -> Vec<u8> {
        let p1 = Sha256::digest(password.as_bytes());
        let p2 = Sha256::digest(p1);
        let mut h = Sha256::new();
        h.update(p2);
        h.update(scramble);
        let mix = h.finalize();
        p1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
    }

    /// A HandshakeResponse41 naming `plugin`; the auth data length is lenenc or one byte.
    pub fn handshake_response(
        user: &str,
        auth: &[u8],
        db: Option<&str>,
        plugin: &str,
        lenenc: bool,
    ) -> Vec<u8> {
        let mut caps = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH;
        if db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        if lenenc {
            caps |= CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
        }
        let mut p = caps.to_le_bytes().to_vec();
        p.extend((16u32 << 20).to_le_bytes());
        p.push(33);
        p.extend([0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8); // < 251: the same byte either way
        p.extend_from_slice(auth);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }
}
