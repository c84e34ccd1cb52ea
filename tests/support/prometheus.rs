//! A real Prometheus for the tests (the Debian package's `prometheus` and `promtool`),
//! a plain HTTP GET to talk to it and to the proxy's `/metrics`, and the metric names
//! a PromQL expression, the alert rules or the Grafana dashboard refer to.
//!
//! [`Prometheus::start`] runs the server on a free loopback port with its own temp
//! storage, scraping one target every second with `deploy/prometheus/alerts.yml`
//! loaded; dropping it kills the process. A missing binary fails the test, saying how
//! to install it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard::telemetry::names::{self, Kind, Metric};
use switchyard::testbed::free_port;

use super::find_on_path;

/// How long Prometheus may take to answer `/-/ready` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two polls of a query that has not yet given what a test waits for.
const POLL: Duration = Duration::from_millis(200);

/// The repository's `deploy/` file at `rel` (e.g. `prometheus/alerts.yml`).
pub fn deploy_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// `name` (`prometheus`, `promtool`) from PATH or /usr/bin; a clear failure when the
/// Debian package is not installed.
pub fn binary(name: &str) -> PathBuf {
    find_on_path(name)
        .or_else(|| Some(Path::new("/usr/bin").join(name)).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: it comes with the Debian package `prometheus`; \
                 run scripts/install-deps.sh"
            )
        })
}

/// Runs `promtool ARGS…` in `dir`; panics with its output unless it exits 0, and
/// returns what it printed.
pub fn promtool(dir: &Path, args: &[&str]) -> String {
    let out: Output = Command::new(binary("promtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool {}: {e}", args.join(" ")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// `GET path` over HTTP/1.0 (so the answer is neither chunked nor kept alive):
/// the status code and the body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("address {addr}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no end of headers in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// `text` as a URL query value: unreserved characters kept, every other byte `%XX`.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One series of an instant query's answer: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// A Prometheus server the test started; killed when dropped.
pub struct Prometheus {
    /// `127.0.0.1:PORT` of its HTTP API.
    pub addr: String,
    child: Child,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`HOST:PORT` serving `/metrics`) as job
    /// `switchyard` every second, evaluating the rules of `rules` every second; returns
    /// once it is ready.
    pub fn start(target: &str, rules: &Path) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-prometheus-")
            .tempdir()
            .expect("temp dir for Prometheus");
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: switchyard\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n",
                rules = rules.display()
            ),
        )
        .expect("write the Prometheus config");
        let storage = dir.path().join("data");
        let log_path = dir.path().join("prometheus.log");
        let log = fs::File::create(&log_path).expect("create the Prometheus log");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
        let mut prometheus = Prometheus {
            addr,
            child,
            log_path,
            _dir: dir,
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) while starting:\n{}",
                    self.log()
                );
            }
            match http_get(&self.addr, "/-/ready") {
                Ok((200, _)) => return,
                Ok((code, body)) => last = format!("{code} {}", body.trim()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(POLL);
        }
        panic!(
            "prometheus was not ready on {} within {START_TIMEOUT:?} (last: {last}):\n{}",
            self.addr,
            self.log()
        );
    }

    /// What Prometheus has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET /api/v1/PATH`: its `data`, or why not (transport, status or error field).
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (code, body) =
            http_get(&self.addr, &format!("/api/v1/{path}")).map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code}, not JSON ({e}): {body}"))?;
        if code != 200 || json["status"] != "success" {
            return Err(format!("HTTP {code}: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// Evaluates `promql` now (`/api/v1/query`): the series of the vector it gives.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let data = self.api(&format!("query?query={}", url_encode(promql)))?;
        let Some(result) = data["result"].as_array() else {
            return Err(format!("no result array in {data}"));
        };
        match data["resultType"].as_str() {
            Some("vector") => {}
            // A scalar (e.g. `time()`) is one series without labels.
            Some("scalar") => return Ok(vec![sample(&serde_json::json!({}), &data["result"])?]),
            other => return Err(format!("result type {other:?} of {promql}")),
        }
        result
            .iter()
            .map(|s| sample(&s["metric"], &s["value"]))
            .collect()
    }

    /// Polls `promql` until `done` accepts its series, up to `timeout`; returns them.
    /// On timeout the test fails with what the query gave last.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(promql);
            if let Ok(samples) = &last {
                if done(samples) {
                    return samples.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{promql}` gave {last:?} after {timeout:?}"
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample from the API's `[time, "value"]` pair.
fn sample(metric: &Value, value: &Value) -> Result<Sample, String> {
    let text = value
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no value in {value}"))?;
    // Prometheus writes NaN and the infinities as Go does.
    let value = match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().map_err(|e| format!("value {other:?}: {e}"))?,
    };
    Ok(Sample {
        labels: metric.as_object().cloned().unwrap_or_default(),
        value,
    })
}

/// The `switchyard_…` names in a PromQL expression: every token that starts with
/// `switchyard_` at a word boundary.
pub fn names_in(expr: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("switchyard_") {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !is_word(c));
        let token: String = rest[at..].chars().take_while(|&c| is_word(c)).collect();
        if boundary {
            names.insert(token.clone());
        }
        rest = &rest[at + token.len()..];
    }
    names
}

/// The catalogue's metric a series name belongs to: the name itself, or a histogram's
/// `_bucket`, `_sum` or `_count` series.
pub fn catalogue_metric(series: &str) -> Option<&'static Metric> {
    names::find(series).or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            names::find(base).filter(|m| m.kind == Kind::Histogram)
        })
    })
}

/// Every `expr:` of a Prometheus rules file: plain and quoted one-line values and
/// folded or literal blocks (`>-`, `|`), whose lines are those indented deeper.
pub fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('>') || value.starts_with('|') {
            let indent = line.len() - line.trim_start().len();
            let mut block = Vec::new();
            while let Some(next) = lines.peek() {
                let deeper = next.len() - next.trim_start().len() > indent;
                if !(deeper || next.trim().is_empty()) {
                    break;
                }
                block.push(next.trim());
                lines.next();
            }
            exprs.push(block.join(" ").trim().to_owned());
        } else {
            exprs.push(value.trim_matches(|c| c == '"' || c == '\'').to_owned());
        }
    }
    exprs
}

/// Every string under one of `keys` in a Grafana dashboard: `["expr"]` gives the
/// PromQL of each panel target and annotation; `"definition"` adds the templating
/// variables' queries (`label_values(…)`, not PromQL).
pub fn dashboard_strings(dashboard: &Value, keys: &[&str]) -> Vec<String> {
    fn walk(value: &Value, key: Option<&str>, keys: &[&str], out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, Some(k), keys, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, key, keys, out)),
            Value::String(s) if key.is_some_and(|k| keys.contains(&k)) => out.push(s.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, None, keys, &mut out);
    out
}

/// A dashboard expression with Grafana's variables replaced so Prometheus can run it:
/// every proxy, a rate window of `rate_window`, a range of `range`.
pub fn grafana_to_promql(expr: &str, rate_window: &str, range: &str) -> String {
    expr.replace("$instance", ".*")
        .replace("$__rate_interval", rate_window)
        .replace("$__range", range)
}

/// The metric families of a Prometheus text exposition: the names of its `# TYPE`
/// lines and of its samples.
pub fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| match line.strip_prefix("# TYPE ") {
            Some(typed) => typed.split_whitespace().next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        })
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}
