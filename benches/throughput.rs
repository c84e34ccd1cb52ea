//! Throughput and latency of sysbench OLTP through switchyard, side by side with a
//! direct connection and HAProxy (mode tcp) in front of the same server, plus a second
//! switchyard that requires TLS from its clients. Per cell (workload × text/prepared ×
//! threads): queries per second and their ratios to direct and to HAProxy, latency
//! percentiles and what the proxy adds per statement, and the proxy's (and HAProxy's)
//! own CPU time and context switches per query. Writes `target/bench/throughput.md`
//! with two SVG plots beside it.
//!
//!     cargo bench --bench throughput
//!
//! Every target runs once per rotation, in an order reversed on each rotation, so drift
//! on a shared machine falls on all of them alike; figures are medians over rotations
//! with their min–max.
//!
//! Knobs (environment):
//! - `SECS`: seconds per sysbench run (default 3: both flavors in under 25 minutes)
//! - `ROTATIONS`: rotations over every target and cell (default 3)
//! - `THREADS`: sysbench thread counts, comma-separated (default `1,4,16`)
//! - `WORKLOADS`: sysbench scripts (default `oltp_point_select,oltp_read_only,oltp_read_write`)
//! - `MODES`: `text` (`--db-ps-mode=disable`) and/or `prepared` (`--db-ps-mode=auto`)
//! - `FLAVORS`: `mariadb` and/or `mysql` (MySQL 9.7 from `target/mysql-9.7`)
mod common;

#[path = "throughput/run.rs"]
mod run;
#[path = "throughput/sysbench.rs"]
mod sysbench;
#[path = "throughput/write.rs"]
mod write;

use common::machine;
use switchyard::testbed::Flavor;

/// What one invocation measures, from the environment.
pub struct Knobs {
    pub secs: u64,
    pub rotations: usize,
    pub threads: Vec<u32>,
    pub workloads: Vec<String>,
    pub modes: Vec<sysbench::Mode>,
    pub flavors: Vec<Flavor>,
}

/// The comma-separated list in `var`, or `default`.
fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn number<T: std::str::FromStr>(var: &str, default: T) -> Result<T, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{var}={v}: not a number")),
        _ => Ok(default),
    }
}

impl Knobs {
    fn from_env() -> Result<Knobs, String> {
        let threads = list("THREADS", "1,4,16")
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("THREADS: {t} is not a number"))
            })
            .collect::<Result<_, _>>()?;
        let modes = list("MODES", "text,prepared")
            .iter()
            .map(|m| sysbench::Mode::parse(m))
            .collect::<Result<_, _>>()?;
        let flavors = list("FLAVORS", "mariadb,mysql")
            .iter()
            .map(|f| match f.as_str() {
                "mariadb" => Ok(Flavor::MariaDb),
                "mysql" => Ok(Flavor::MySql),
                other => Err(format!("FLAVORS: {other} is neither mariadb nor mysql")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Knobs {
            secs: number("SECS", 3)?,
            rotations: number("ROTATIONS", 3usize)?.max(1),
            threads,
            workloads: list(
                "WORKLOADS",
                "oltp_point_select,oltp_read_only,oltp_read_write",
            ),
            modes,
            flavors,
        })
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        let mut env = Vec::new();
        let mut put = |var: &str| {
            if let Ok(v) = std::env::var(var) {
                if !v.trim().is_empty() {
                    env.push(format!("{var}={v}"));
                }
            }
        };
        for var in [
            "SECS",
            "ROTATIONS",
            "THREADS",
            "WORKLOADS",
            "MODES",
            "FLAVORS",
        ] {
            put(var);
        }
        env.push("cargo bench --bench throughput".to_owned());
        env.join(" ")
    }
}

fn main() {
    let knobs = Knobs::from_env().unwrap_or_else(|e| common::fail(e));
    for (tool, package) in [("sysbench", "sysbench"), ("haproxy", "haproxy")] {
        common::require_tool(tool, package).unwrap_or_else(|e| common::fail(e));
    }
    // Every flavor's build is found before the first one runs for ten minutes.
    for &flavor in &knobs.flavors {
        if let Err(e) = common::bed::build(flavor) {
            common::fail(format!("{e} (FLAVORS=mariadb measures MariaDB alone)"));
        }
    }
    let mut machine = machine::describe(&[
        ("sysbench", machine::output("sysbench", &["--version"])),
        ("HAProxy", machine::output("haproxy", &["-v"])),
    ]);
    let mut flavors = Vec::new();
    for &flavor in &knobs.flavors {
        let result = run::flavor(flavor, &knobs).unwrap_or_else(|e| common::fail(e));
        machine.push((format!("{} server", flavor.name()), result.version.clone()));
        flavors.push(result);
    }
    let report = write::report(&knobs, &machine, &flavors);
    let path = report.write().unwrap_or_else(|e| common::fail(e));
    println!("{}", write::headline_text(&report));
    println!("report: {}", path.display());
}
