//! Checks the benchmarks' shared bed on this machine: a MariaDB pair, the proxy and
//! HAProxy in front, one query through each, and the report folder. Writes
//! `target/bench/bed_check.md`.
//!
//!     cargo bench --bench bed_check
mod common;

use common::{bed, machine, proc_stats::ProcStats, report::Report};
use switchyard::testbed::Flavor;

fn main() {
    let pair = bed::pair(Flavor::MariaDb, &[]).unwrap_or_else(|e| common::fail(e));
    let port = switchyard::testbed::free_port();
    let config = bed::proxy_config(&pair, "proxy", port, "", "");
    let proxy = bed::proxy(&pair, "proxy", port, &config).unwrap_or_else(|e| common::fail(e));
    let haproxy = bed::haproxy(&pair, &pair.blue.addr()).unwrap_or_else(|e| common::fail(e));
    let mut rows = Vec::new();
    for p in [&proxy, &haproxy] {
        let out = std::process::Command::new("mariadb")
            .args([
                "--protocol=TCP",
                "-h",
                "127.0.0.1",
                "-P",
                &p.port.to_string(),
            ])
            .args([
                "-uapp",
                "-papp-secret",
                "--skip-ssl",
                "-N",
                "-e",
                "SELECT @@server_id",
            ])
            .output()
            .unwrap_or_else(|e| common::fail(e));
        let stats = ProcStats::read(p.pid()).unwrap_or_else(|e| common::fail(e));
        rows.push(vec![
            p.name.clone(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            format!("{:.2}", stats.cpu_secs),
            stats.ctx_switches.to_string(),
            stats.rss_kib.to_string(),
        ]);
    }
    let mut report = Report::new(
        "bed_check",
        "Benchmark bed check",
        "cargo bench --bench bed_check",
        &machine::describe(&[("server", pair.blue.build().version().unwrap_or_default())]),
    );
    report.table(
        &[
            "process",
            "server_id",
            "CPU s",
            "context switches",
            "RSS KiB",
        ],
        &rows,
    );
    let path = report.write().unwrap_or_else(|e| common::fail(e));
    println!("{}\n{}", report.text(), path.display());
}
