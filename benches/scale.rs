//! How many connections the proxy carries on one box, beside HAProxy (TCP mode) in
//! front of the same MariaDB (thread pool, `max_connections` raised):
//! 1. resident memory per idle session: sessions open in waves, each runs a query
//!    with a ~200 KB result first (so its buffers grew), then idles; the proxy's RSS
//!    after each wave and once the sessions idled past its buffer release (~1 s),
//!    up to the largest count that fits the open-file limit (what stopped it is
//!    measured: the first refusal, the proxy's open descriptors and limit);
//! 2. while they idle, the p50/p99 of a few active clients' point selects (closed
//!    loop), against the same with no idle sessions;
//! 3. connection set-up: connect + log in + `SELECT 1` + quit by concurrent
//!    connectors, straight to the server, through HAProxy and through the proxy, in
//!    three rounds of rotated order.
//!
//! Writes `target/bench/scale.md` and `scale-rss.svg`.
//!
//!     cargo bench --bench scale
//!
//! Knobs (environment): `SIZES` — the waves, sessions held after each (default
//! `250,1000,2500,5000,10000`; the last is the goal); `SECS` — seconds of each
//! latency and set-up measurement (default 5); `CONNECTORS` — concurrent connectors
//! of the set-up measurement (default 8).
#[path = "scale/client.rs"]
mod client;
mod common;
#[path = "scale/report.rs"]
mod report;
#[path = "scale/waves.rs"]
mod waves;

use std::process::Command;

use common::{bed, machine, proc_stats};
use switchyard::testbed::{free_port, Flavor};

/// Rounds of the connection set-up measurement.
const ROUNDS: usize = 3;
/// Clients running point selects while the sessions idle.
const ACTIVE: usize = 4;
/// Set only in the re-executed benchmark, whose open-file limit is already raised.
const RAISED: &str = "SCALE_FD_LIMIT_RAISED";

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| common::fail(format!("{name}={v} is not a number"))),
        _ => default,
    }
}

fn sizes() -> Vec<usize> {
    let text = std::env::var("SIZES").unwrap_or_else(|_| "250,1000,2500,5000,10000".into());
    let mut sizes: Vec<usize> = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| common::fail(format!("SIZES: `{s}` is not a number")))
        })
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes.retain(|&s| s > 0);
    if sizes.is_empty() {
        common::fail("SIZES names no wave");
    }
    sizes
}

/// Sessions need two descriptors each in a proxy (and one in this process): the
/// soft open-file limit goes up to the hard one by running the benchmark again under
/// `ulimit -S -n`, which the servers and proxies started from it inherit.
fn raise_fd_limit() {
    let Ok((soft, hard)) = proc_stats::fd_limit("self") else {
        return;
    };
    if soft >= hard || std::env::var_os(RAISED).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| common::fail(e));
    let hard = if hard == u64::MAX {
        "unlimited".to_owned()
    } else {
        hard.to_string()
    };
    eprintln!("raising the open-file limit from {soft} to {hard}");
    let status = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -S -n "$1" && shift && exec "$@""#,
            "sh",
            &hard,
        ])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(RAISED, "1")
        .status()
        .unwrap_or_else(|e| common::fail(format!("re-running under ulimit: {e}")));
    std::process::exit(status.code().unwrap_or(1));
}

fn main() {
    raise_fd_limit();
    let sizes = sizes();
    let secs: f64 = knob("SECS", 5.0);
    let connectors: usize = knob("CONNECTORS", 8);
    let goal = sizes.last().copied().unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| common::fail(e));

    let max_connections = format!("--max-connections={}", goal + 200);
    let pair = bed::pair(
        Flavor::MariaDb,
        &[&max_connections, "--thread-handling=pool-of-threads"],
    )
    .unwrap_or_else(|e| common::fail(e));
    let server_port = pair.blue.port;
    runtime
        .block_on(client::create_point_table(server_port))
        .unwrap_or_else(|e| common::fail(format!("creating the point-select table: {e}")));

    let port = free_port();
    let keys = format!("max_client_connections = {}", goal + ACTIVE + 100);
    let config = bed::proxy_config(&pair, "switchyard", port, &keys, "");
    let proxy = bed::proxy(&pair, "switchyard", port, &config).unwrap_or_else(|e| common::fail(e));
    // HAProxy refuses to start unless 2 × maxconn + 17 descriptors fit its limit.
    let fd_limit = proc_stats::fd_limit("self").map(|l| l.0).unwrap_or(1024);
    let maxconn = (goal + ACTIVE).min((fd_limit.min(1 << 30) as usize).saturating_sub(17) / 2);
    let haproxy = bed::haproxy_with_maxconn(&pair, &pair.blue.addr(), maxconn)
        .unwrap_or_else(|e| common::fail(e));

    let mut runs = Vec::new();
    for p in [&proxy, &haproxy] {
        eprintln!("{}: sessions in waves up to {goal}", p.name);
        let run = runtime
            .block_on(waves::run(p.pid(), p.port, &sizes, ACTIVE, secs))
            .unwrap_or_else(|e| common::fail(format!("{}: {e}\n{}", p.name, p.log())));
        runs.push((p.name.clone(), run));
    }

    eprintln!("connection set-up, {connectors} connectors, {secs} s each, in {ROUNDS} rounds");
    let targets = [
        ("direct", server_port),
        ("haproxy", haproxy.port),
        ("switchyard", proxy.port),
    ];
    let mut setups: Vec<(String, client::Setups)> = targets
        .iter()
        .map(|(name, _)| (name.to_string(), client::Setups::default()))
        .collect();
    // Rounds in rotated order, so a change in the machine's load falls on every target.
    for round in 0..ROUNDS {
        for i in 0..targets.len() {
            let t = (i + round) % targets.len();
            let (_, port) = targets[t];
            let s = runtime.block_on(client::setups(
                port,
                connectors,
                secs / ROUNDS as f64,
                round == 0,
            ));
            setups[t].1.merge(s);
        }
    }
    for (name, s) in &setups {
        eprintln!("  {name}: {:.0} connections/s", s.per_sec());
    }

    let machine = machine::describe(&[
        (
            "server",
            pair.blue.build().version().unwrap_or_default() + ", thread pool",
        ),
        ("HAProxy", machine::output("haproxy", &["-v"])),
        ("open-file limit", fd_limit.to_string()),
    ]);
    let settings = report::Settings {
        sizes,
        secs,
        connectors,
        active: ACTIVE,
        haproxy_maxconn: maxconn,
    };
    let path =
        report::write(&machine, &settings, &runs, &setups).unwrap_or_else(|e| common::fail(e));
    println!("report: {}", path.display());
}
