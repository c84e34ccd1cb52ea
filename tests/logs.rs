//! `[proxy] log_format = "json"`: the real proxy binary writes one JSON object per line
//! on stderr, from its first line on, and a switchover's trace (no OTLP endpoint set)
//! is in those lines with the same fields a span carries.

mod support;

use serde_json::Value;

use support::{pair, switchovers, Proxy};

#[test]
fn json_logs_are_one_object_per_line_and_carry_the_switchover_trace() {
    let pair = pair();
    let mut proxy = Proxy::builder(&pair)
        .proxy_key("log_format", "\"json\"")
        .start();
    switchovers(&proxy, 1, std::time::Duration::from_millis(50));
    proxy.stop();
    let log = proxy.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{log}")))
        .collect();
    assert!(!log.contains('\u{1b}'), "colour codes in the log:\n{log}");
    for line in &lines {
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "{line}"
        );
    }
    let message = |line: &Value| line["message"].as_str().unwrap_or("").to_owned();
    // The first lines too (the config's own warnings come before the listener).
    assert!(
        lines
            .iter()
            .take(3)
            .any(|l| message(l).starts_with("listening on")),
        "{log}"
    );
    let spans: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "switchyard::trace")
        .collect();
    let names: Vec<&str> = spans.iter().filter_map(|l| l["span"].as_str()).collect();
    assert_eq!(
        names.join(" "),
        "switchover precheck draining fencing catching_up promoting retargeting done",
        "{log}"
    );
    let root = spans[0];
    assert!(
        root["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{root}"
    );
    assert!(root["start_unix_ms"].as_u64().is_some(), "{root}");
    let fields = message(root);
    for field in [
        "switchover.result=\"ok\"",
        "switchover.direction=\"blue → green\"",
        "gtid.fence=",
        "switchover.held_commands=",
    ] {
        assert!(fields.contains(field), "{field} missing: {fields}");
    }
    assert!(
        message(spans[1]).contains("guardrail.reachable=true"),
        "{}",
        spans[1]
    );
}
