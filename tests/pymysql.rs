//! PyMySQL (and mysql-connector-python) through the proxy: each test runs one script
//! of `tests/py/` as `python3 SCRIPT PROXY_PORT DIRECT_PORT`; the script compares what
//! it sees through the proxy with blue directly and exits non-zero on the first
//! mismatch. A missing python3, PyMySQL or mysql-connector-python fails the test (the
//! script cannot import it). Each runs against a MariaDB pair and a MySQL 9.7 pair
//! (`SWITCHYARD_FLAVOR` tells the script which: `MariaDB` or `MySQL`).

mod support;

use switchyard::testbed::{Flavor, Pair};

use support::Proxy;

/// `NAME(flavor)` running `tests/py/SCRIPT`, for each `NAME => SCRIPT`, then the
/// tests of both flavours.
macro_rules! scripts {
    ($($name:ident => $script:literal),* $(,)?) => {
        $(fn $name(flavor: Flavor) {
            run_script($script, flavor);
        })*
        for_each_flavor!($($name),*);
    };
}

scripts!(
    parameterised_queries_types_unicode_select_db_ping_and_errors => "queries.py",
    executemany_transactions_and_load_data_local => "writes.py",
    blob_of_20_mib_round_trips => "blob.py",
    eight_concurrent_connections => "concurrent.py",
    kill_query_and_connection_by_handshake_id => "kill.py",
    kill_query_by_connection_id_function => "kill_by_connection_id.py",
    connector_python_compressed_queries_20_mib_blob_and_load_data => "connector_compress.py",
    connector_python_c_extension_compressed => "connector_compress_cext.py",
    connector_python_statements_load_data_local_20_mib_and_a_wrong_password => "connector.py",
);

/// Start a pair of `flavor` and the proxy, run `tests/py/<script>` against them, and
/// fail with the script's output and the proxy's log unless it exits 0.
fn run_script(script: &str, flavor: Flavor) {
    run_script_on(&support::pair_of(flavor), script, flavor);
}

/// [`run_script`] on a pair already started.
fn run_script_on(pair: &Pair, script: &str, flavor: Flavor) {
    let proxy = Proxy::start(pair, "");
    let out = support::py_script(script, &proxy.addr, pair.blue.port, flavor)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
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

/// MySQL's query attributes, which the proxy does not offer: see the script.
#[test]
fn connector_python_query_attributes_reach_mysql_only_directly() {
    let pair = support::pair_of(Flavor::MySql);
    pair.blue
        .sql("INSTALL COMPONENT 'file://component_query_attributes'")
        .unwrap();
    run_script_on(&pair, "query_attributes.py", Flavor::MySql);
}
