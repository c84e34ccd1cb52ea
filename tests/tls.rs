//! TLS end to end, on MariaDB and MySQL 9.7 pairs whose servers use a CA the test
//! makes (tests/support/tls.rs): the servers directly first (the harness itself,
//! and what a server answers a plaintext login when it requires TLS), then through
//! the proxy, with its own certificate from the same CA and the backend leg on TLS.

mod support;

use switchyard::testbed::{Flavor, APP_PASSWORD, APP_USER};

use support::raw::{hex, Raw, BASE_CAPS};
use support::tls::{status_args, status_cipher, tls_cli, tls_pair_of, TestCa};

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
