//! deploy/ against the real thing: the alert rules pass `promtool check rules` and
//! their unit tests, the scrape config passes `promtool check config`, the Grafana
//! dashboard is importable and its PromQL parses, every metric the dashboard and the
//! rules name is in the catalogue — and a real Prometheus, scraping a proxy every
//! second through real traffic and a real switchover, sees the counters and phase
//! metrics move, loads the rules and evaluates every dashboard query.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde_json::Value;
use switchyard::switchover::phase::Phase;
use switchyard::telemetry::names;
use switchyard::testbed::{free_port, APP_PASSWORD, APP_USER};

use support::load::{direction, sql, switchover_round, Workload};
use support::prometheus::{
    catalogue_metric, dashboard_strings, deploy_file, exposed_names, grafana_to_promql, http_get,
    names_in, promtool, rule_exprs, Prometheus, Sample,
};
use support::{mariadb_cli, pair, Proxy};

/// Longest a query may take to show what a scrape (every second) brought in.
const SCRAPED: Duration = Duration::from_secs(30);

/// The phases a successful switchover records a duration for: from the precheck up
/// to `done`, in order.
fn timed_phases() -> Vec<&'static str> {
    std::iter::successors(Some(Phase::Precheck), |p| Some(p.next()))
        .take_while(|p| *p != Phase::Done)
        .map(Phase::name)
        .collect()
}

/// The rows the dashboard has, in order.
const ROWS: [&str; 7] = [
    "Overview",
    "Traffic",
    "Latency",
    "Sessions",
    "Replication health",
    "Guardrails",
    "Switchovers",
];

fn dashboard() -> Value {
    let path = deploy_file("grafana/switchyard.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn alert_rules() -> String {
    fs::read_to_string(deploy_file("prometheus/alerts.yml")).expect("read alerts.yml")
}

/// The alert names of alerts.yml, in order.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Every metric name the dashboard (queries and variables) and the alert rules use.
fn referenced_names() -> BTreeSet<String> {
    let dashboard = dashboard_strings(&dashboard(), &["expr", "definition"]);
    dashboard
        .iter()
        .chain(rule_exprs(&alert_rules()).iter())
        .flat_map(|expr| names_in(expr))
        .collect()
}

#[test]
fn promtool_checks_the_rules_runs_their_unit_tests_and_checks_the_scrape_config() {
    let dir = deploy_file("prometheus");
    let checked = promtool(&dir, &["check", "rules", "alerts.yml"]);
    let rules = alert_names(&alert_rules());
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "promtool check rules:\n{checked}"
    );
    let tested = promtool(&dir, &["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "promtool test rules:\n{tested}");
    let config = promtool(&dir, &["check", "config", "prometheus.yml"]);
    assert!(
        config.contains("SUCCESS: 1 rule files found"),
        "promtool check config:\n{config}"
    );
    // The unit tests fire the alerts an operator most needs to trust.
    let tests = fs::read_to_string(dir.join("alerts_test.yml")).expect("read alerts_test.yml");
    for alert in [
        "SwitchyardStandbyReplicationBroken",
        "SwitchyardSwitchoverRolledBack",
    ] {
        assert!(
            tests.contains(alert),
            "alerts_test.yml does not test {alert}"
        );
    }
    eprintln!("alerts.yml: {}", rules.join(", "));
}

#[test]
fn every_metric_the_dashboard_and_rules_name_is_in_the_catalogue() {
    let names = referenced_names();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| catalogue_metric(n).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "not in src/telemetry/names.rs: {unknown:?}"
    );
    // And the other way: every metric of the catalogue is on the dashboard or in a rule.
    let used: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| catalogue_metric(n))
        .map(|m| m.name)
        .collect();
    let unused: Vec<&str> = names::ALL
        .iter()
        .map(|m| m.name)
        .filter(|n| !used.contains(n))
        .collect();
    assert!(
        unused.is_empty(),
        "neither the dashboard nor the rules show {unused:?}"
    );
}

#[test]
fn names_are_read_from_expressions_and_histogram_series() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(switchyard_command_duration_seconds_bucket{instance=~"$instance"}[5m]))) / on() group_left xswitchyard_other"#;
    assert_eq!(
        names_in(expr).into_iter().collect::<Vec<_>>(),
        ["switchyard_command_duration_seconds_bucket"]
    );
    assert_eq!(
        catalogue_metric("switchyard_command_duration_seconds_count").map(|m| m.name),
        Some(names::COMMAND_DURATION)
    );
    // Only histograms have the suffixed series.
    assert!(catalogue_metric("switchyard_ready_count").is_none());
    let yaml = "      - alert: A\n        expr: up == 0\n      - alert: B\n        expr: >-\n          a\n          or b\n        for: 1m\n";
    assert_eq!(rule_exprs(yaml), ["up == 0", "a or b"]);
}

#[test]
fn the_dashboard_is_importable_and_its_queries_parse() {
    let dash = dashboard();
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
        "schemaVersion {}",
        dash["schemaVersion"]
    );
    let variables = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
        "no DS_PROMETHEUS datasource variable"
    );
    let panels = dash["panels"].as_array().expect("panels");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ROWS);
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(ids.insert(panel["id"].as_u64()), "panel id twice: {title}");
        let grid = &panel["gridPos"];
        let x = grid["x"].as_u64().unwrap_or(99);
        let w = grid["w"].as_u64().unwrap_or(99);
        assert!(x + w <= 24, "{title} is wider than the dashboard");
        if panel["type"] == "row" {
            continue;
        }
        let mut sources = vec![&panel["datasource"]];
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        sources.extend(targets.iter().map(|t| &t["datasource"]));
        assert!(
            sources.iter().all(|d| d["uid"] == "${DS_PROMETHEUS}"),
            "{title}: a datasource other than ${{DS_PROMETHEUS}}"
        );
    }
    // The switchover timeline: annotations from the switchovers and the phase gauge.
    let annotations = dashboard_strings(&dash["annotations"], &["expr"]);
    for metric in [names::SWITCHOVERS, names::SWITCHOVER_PHASE] {
        assert!(
            annotations.iter().any(|a| names_in(a).contains(metric)),
            "no annotation from {metric}"
        );
    }

    // Every query through promtool's PromQL parser, as recording rules.
    let rules: String = dashboard_strings(&dash, &["expr"])
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            let promql = grafana_to_promql(expr, "1m", "1h");
            format!("      - record: dashboard_query_{i}\n        expr: {promql:?}\n")
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("dashboard.yml"),
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .expect("write the rules");
    promtool(dir.path(), &["check", "rules", "dashboard.yml"]);
}

/// The first series' value, or NaN when there is none.
fn first(samples: &[Sample]) -> f64 {
    samples.first().map_or(f64::NAN, |s| s.value)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_proxy_through_a_switchover() {
    let pair = pair();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::builder(&pair)
        .proxy_key("metrics_listen", &format!("\"{metrics_addr}\""))
        .toml("[telemetry]\npoll_interval = \"1s\"")
        .start();
    let prometheus = Prometheus::start(&metrics_addr, &deploy_file("prometheus/alerts.yml"));
    let prom = &prometheus;

    // 1. Prometheus reaches the proxy before any traffic.
    prom.wait_for(r#"up{job="switchyard"}"#, SCRAPED, "target up", |s| {
        first(s) == 1.0
    });
    let commands_before = first(&prom.query("sum(switchyard_commands_total)").expect("query"));
    let commands_before = if commands_before.is_nan() {
        0.0
    } else {
        commands_before
    };

    // 2. Real traffic: the mariadb CLI, then mysql_async writers and readers through a
    //    switchover to green, every acknowledged write checked on green.
    let cli = mariadb_cli(
        &proxy.addr,
        APP_USER,
        APP_PASSWORD,
        Some("test"),
        &[
            "-N",
            "-e",
            "CREATE TABLE cli (id INT PRIMARY KEY); INSERT INTO cli VALUES (1), (2); \
             SELECT COUNT(*) FROM cli",
        ],
        None,
    );
    assert!(
        cli.status.success() && String::from_utf8_lossy(&cli.stdout).trim() == "2",
        "mariadb CLI through the proxy: {}{}",
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr)
    );
    let workload = Workload::connect(&proxy.addr).await;
    switchover_round(&proxy, direction(&pair, true), workload, "blue → green").await;

    // 3. Every metric the dashboard and the rules name is in a live scrape.
    let (code, exposition) = http_get(&metrics_addr, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "GET /metrics: {exposition}");
    let exposed = exposed_names(&exposition);
    let missing: Vec<String> = referenced_names()
        .into_iter()
        .filter(|n| {
            !exposed.contains(n) && !catalogue_metric(n).is_some_and(|m| exposed.contains(m.name))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named by deploy/ but not in the scrape: {missing:?}\n{exposition}"
    );

    // 4. What Prometheus saw, through its query API.
    let commands = prom.wait_for(
        "sum(switchyard_commands_total)",
        SCRAPED,
        "commands counted",
        |s| first(s) > commands_before,
    );
    prom.wait_for(
        r#"switchyard_switchovers_total{result="ok"}"#,
        SCRAPED,
        "one switchover ok",
        |s| first(s) == 1.0,
    );
    prom.wait_for(
        r#"switchyard_active_side{side="green"}"#,
        SCRAPED,
        "green active",
        |s| first(s) == 1.0,
    );
    let phases = prom.wait_for(
        "sum by (phase) (switchyard_switchover_phase_duration_seconds_count)",
        SCRAPED,
        "a duration for each phase",
        |s| {
            timed_phases()
                .iter()
                .all(|p| s.iter().any(|x| x.label("phase") == *p && x.value == 1.0))
        },
    );
    let pause = prom.wait_for(
        "switchyard_switchover_last_pause_seconds",
        SCRAPED,
        "last pause",
        |s| first(s) > 0.0,
    );
    prom.wait_for(r#"up{job="switchyard"}"#, SCRAPED, "still up", |s| {
        first(s) == 1.0
    });

    // 5. The rules are loaded and evaluate cleanly; after an ok switchover nothing fires.
    let expected = alert_names(&alert_rules());
    let deadline = std::time::Instant::now() + SCRAPED;
    let loaded = loop {
        let data = prom.api("rules").expect("GET /api/v1/rules");
        let rules: Vec<(String, String)> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if rules.iter().all(|(_, health)| health == "ok") && !rules.is_empty() {
            break rules;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rules not all evaluated ok: {rules:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let names: Vec<String> = loaded.into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, expected, "the rules Prometheus loaded");
    let firing = prom
        .query(r#"ALERTS{alertstate="firing"}"#)
        .expect("query ALERTS");
    assert!(firing.is_empty(), "alerts firing: {firing:?}");

    // 6. The alerts follow the live metrics: blue, now green's standby, stops
    //    replicating, and the replication-broken and guardrail alerts go pending (their
    //    `for:` is minutes); replication runs again and they clear.
    sql(&pair.blue, "STOP SLAVE");
    let pending = |alert: &str| {
        format!(r#"ALERTS{{alertname="{alert}",alertstate="pending",job="switchyard"}}"#)
    };
    prom.wait_for(
        &pending("SwitchyardStandbyReplicationBroken"),
        SCRAPED,
        "replication-broken alert pending",
        |s| first(s) == 1.0,
    );
    prom.wait_for(
        &pending("SwitchyardGuardrailFailing"),
        SCRAPED,
        "standby_replicating guardrail alert pending",
        |s| {
            s.iter()
                .any(|x| x.label("guardrail") == "standby_replicating")
        },
    );
    sql(&pair.blue, "START SLAVE");
    prom.wait_for(
        r#"ALERTS{alertname=~"SwitchyardStandbyReplicationBroken|SwitchyardGuardrailFailing"}"#,
        SCRAPED,
        "the alerts cleared once replication runs again",
        |s| s.is_empty(),
    );

    // 7. Every dashboard query runs on Prometheus, and the core panels have data.
    let mut empty = Vec::new();
    for expr in dashboard_strings(&dashboard(), &["expr"]) {
        let promql = grafana_to_promql(&expr, "10s", "5m");
        let result = prom
            .query(&promql)
            .unwrap_or_else(|e| panic!("dashboard query `{promql}`: {e}"));
        if result.is_empty() {
            empty.push(promql);
        }
    }
    for core in [
        "switchyard_commands_total",
        "switchyard_command_duration_seconds_bucket",
        "switchyard_client_connections{",
        "switchyard_switchover_phase_duration_seconds_sum",
        "switchyard_standby_replication_io_running",
        "switchyard_guardrail_ok",
    ] {
        assert!(
            !empty.iter().any(|e| e.contains(core)),
            "a dashboard query on {core} has no data: {empty:#?}"
        );
    }
    eprintln!(
        "prometheus: {} commands counted, pause {:.4} s, phases {}, rules {}, \
         dashboard queries without data now: {empty:?}",
        first(&commands),
        first(&pause),
        phases
            .iter()
            .map(|s| format!("{}={}", s.label("phase"), s.value))
            .collect::<Vec<_>>()
            .join(" "),
        names.len()
    );
}
