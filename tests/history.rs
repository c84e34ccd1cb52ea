//! `switchyard ctl history`: the past switchovers, kept next to the state file across a
//! restart of the proxy. Two real switchovers (blue → green → blue) and one the
//! guardrails refuse (green's replication stopped), then a restart: `history` lists all
//! three, oldest first, with their direction, result, pause, phases, fence GTID and the
//! refusal's reason.

mod support;

use serde_json::Value;

use support::load::sql;
use support::{pair, switchovers, Proxy};

#[test]
fn history_lists_every_switchover_across_a_restart() {
    let pair = pair();
    // A write, so that the first fence has a position to report.
    sql(
        &pair.blue,
        "CREATE TABLE IF NOT EXISTS test.history (id INT)",
    );
    pair.wait_green_caught_up(std::time::Duration::from_secs(30))
        .expect("green caught up");
    let mut proxy = Proxy::start(&pair, "");
    let figures = switchovers(&proxy, 2, std::time::Duration::from_millis(100));
    assert_eq!(figures.len(), 2);

    sql(&pair.green, "STOP SLAVE");
    let (ok, out) = proxy.ctl(&["switchover"]);
    assert!(!ok && out.contains("refused"), "{out}");
    sql(&pair.green, "START SLAVE");

    proxy.restart();
    let history_file = proxy.state_file.with_extension("history.json");
    assert!(history_file.exists(), "{}", history_file.display());

    let (ok, text) = proxy.ctl(&["history"]);
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("blue → green ok pause"), "{text}");
    assert!(lines[1].contains("green → blue ok pause"), "{text}");
    assert!(lines[2].contains("blue → green refused"), "{text}");
    assert!(lines[2].contains("standby_replicating"), "{text}");
    assert!(
        lines[3].starts_with("OK 3 switchover(s); kept in ")
            && lines[3].contains("state.history.json"),
        "{text}"
    );

    let (ok, json) = proxy.ctl(&["--json", "history"]);
    assert!(ok, "{json}");
    let entries: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter_map(|l| l.get("entry").cloned())
        .collect();
    let results: Vec<&str> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(results, ["ok", "ok", "refused"], "{json}");
    let started: Vec<u64> = entries
        .iter()
        .map(|e| e["started_unix_ms"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        started.windows(2).all(|w| 0 < w[0] && w[0] <= w[1]),
        "{json}"
    );
    let first_fence = entries[0]["fence_gtid"].as_str().unwrap_or("");
    assert!(first_fence.starts_with("0-"), "{json}");
    for ok_entry in &entries[..2] {
        assert!(ok_entry["fence_gtid"].is_string(), "{ok_entry}");
        let phases: Vec<&str> = ok_entry["phases"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x[0].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            phases.join(" → "),
            "precheck → draining → fencing → catching_up → promoting → retargeting → done"
        );
        assert!(ok_entry["pause_ms"].as_f64().is_some_and(|p| p > 0.0));
    }
    let refused = &entries[2];
    assert!(refused["fence_gtid"].is_null(), "{refused}");
    assert_eq!(refused["pause_ms"].as_f64(), Some(0.0));
    let reason = refused["reason"].as_str().unwrap_or("");
    assert!(reason.contains("standby_replicating"), "{reason}");
}
