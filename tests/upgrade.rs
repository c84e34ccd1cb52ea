//! The upgrade path: blue on the system's MariaDB 10.11, green on MariaDB 11.8 (the
//! folder `scripts/fetch-mariadb.sh` unpacks), and the load test of
//! `tests/switchover.rs` switching production to 11.8 and back.
//!
//! The 11.8 folder comes from `SWITCHYARD_UPGRADE_BUILD`, by default
//! `target/mariadb-11.8` (see [`support::upgrade_build`]). Without it the test fails:
//! `scripts/test.sh` fetches it first.

mod support;

use support::load::{direction, switchover_round, Workload};
use support::Proxy;
use switchyard::testbed::{Build, Pair, PairOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchover_to_mariadb_11_8_and_back_under_load() {
    let green = support::upgrade_build();
    let blue = Build::system().unwrap_or_else(|e| panic!("MariaDB for blue: {e}"));
    let (blue_version, green_version) = (blue.version().unwrap(), green.version().unwrap());
    eprintln!("upgrade: blue {blue_version}, green {green_version}");
    let pair = tokio::task::block_in_place(|| {
        Pair::start(PairOptions {
            blue,
            green,
            dir: None,
            server_args: Vec::new(),
        })
    })
    .unwrap_or_else(|e| panic!("cannot start the 10.11/11.8 pair: {e}"));
    let proxy = Proxy::start(&pair, "");
    let workload = Workload::connect(&proxy.addr).await;
    let workload = switchover_round(
        &proxy,
        direction(&pair, true),
        workload,
        "upgrade: blue (10.11) → green (11.8)",
    )
    .await;
    let workload = switchover_round(
        &proxy,
        direction(&pair, false),
        workload,
        "upgrade: green (11.8) → blue (10.11)",
    )
    .await;
    eprintln!(
        "upgrade: {} statements, {} acknowledged rows, 0 errors",
        workload.tally.statements,
        workload.tally.acked.len()
    );
}
