//! PyMySQL (and mysql-connector-python) through the proxy: each test runs one script
//! of `tests/py/` as `python3 SCRIPT PROXY_PORT DIRECT_PORT`; the script compares what
//! it sees through the proxy with blue directly and exits non-zero on the first
//! mismatch. A missing python3, PyMySQL or mysql-connector-python fails the test (the
//! script cannot import it).

mod support;

use std::path::PathBuf;
use std::process::Command;

use switchyard::testbed::{APP_PASSWORD, APP_USER};

use support::Proxy;

/// Start a pair and the proxy, run `tests/py/<script>` against them, and fail with
/// the script's output and the proxy's log unless it exits 0.
fn run_script(script: &str) {
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let proxy_port = proxy.addr.rsplit_once(':').expect("HOST:PORT").1;
    let out = Command::new(support::python())
        .arg(&path)
        .arg(proxy_port)
        .arg(pair.blue.port.to_string())
        .env("SWITCHYARD_USER", APP_USER)
        .env("SWITCHYARD_PASSWORD", APP_PASSWORD)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}{stderr}\nproxy log:\n{}",
        out.status,
        proxy.log()
    );
    eprint!("{stdout}");
}

#[test]
fn parameterised_queries_types_unicode_select_db_ping_and_errors() {
    run_script("queries.py");
}

#[test]
fn executemany_transactions_and_load_data_local() {
    run_script("writes.py");
}

#[test]
fn blob_of_20_mib_round_trips() {
    run_script("blob.py");
}

#[test]
fn eight_concurrent_connections() {
    run_script("concurrent.py");
}

#[test]
fn kill_query_and_connection_by_handshake_id() {
    run_script("kill.py");
}

#[test]
fn kill_query_by_connection_id_function() {
    run_script("kill_by_connection_id.py");
}

#[test]
fn connector_python_asking_for_compression_is_refused_not_hung() {
    run_script("connector_compress.py");
}
