//! sysbench 1.0 as the client: the command line of one run and what its output says
//! (queries and transactions per second, errors, the latency histogram).

use std::path::Path;
use std::process::Command;

use switchyard::testbed::{APP_PASSWORD, APP_USER};

/// Tables and rows `prepare` creates (and every run reads).
pub const TABLES: u32 = 4;
pub const TABLE_SIZE: u32 = 10_000;

/// How statements go to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// `COM_QUERY` text (`--db-ps-mode=disable`).
    Text,
    /// Server-side prepared statements (`--db-ps-mode=auto`).
    Prepared,
}

impl Mode {
    pub fn parse(name: &str) -> Result<Mode, String> {
        match name {
            "text" => Ok(Mode::Text),
            "prepared" => Ok(Mode::Prepared),
            other => Err(format!("MODES: {other} is neither text nor prepared")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Prepared => "prepared",
        }
    }

    pub fn ps_mode(self) -> &'static str {
        match self {
            Mode::Text => "disable",
            Mode::Prepared => "auto",
        }
    }
}

/// Where and how one run connects.
pub struct Endpoint<'a> {
    pub port: u16,
    /// `--mysql-ssl=on`, run in this folder: sysbench 1.0 takes no file names and
    /// reads `cacert.pem`, `client-cert.pem` and `client-key.pem` from its working
    /// directory.
    pub tls_dir: Option<&'a Path>,
}

/// sysbench `workload` against `to` with the app account and the sbtest tables.
pub fn command(workload: &str, to: &Endpoint) -> Command {
    let mut cmd = Command::new("sysbench");
    cmd.arg(workload)
        .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
        .arg(format!("--mysql-port={}", to.port))
        .arg(format!("--mysql-user={APP_USER}"))
        .arg(format!("--mysql-password={APP_PASSWORD}"))
        .arg("--mysql-db=sbtest")
        .arg(format!("--tables={TABLES}"))
        .arg(format!("--table-size={TABLE_SIZE}"));
    match to.tls_dir {
        Some(dir) => {
            cmd.arg("--mysql-ssl=on").current_dir(dir);
        }
        None => {
            cmd.arg("--mysql-ssl=off");
        }
    }
    cmd
}

/// Runs `cmd`; its stdout, or an error with everything it printed.
pub fn output(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("sysbench ({what}): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "sysbench ({what}) failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// What one `run` printed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub queries: u64,
    pub qps: f64,
    pub transactions: u64,
    pub errors: u64,
    /// `(bucket value in ms, count)` per transaction, ascending.
    pub histogram: Vec<(f64, u64)>,
}

impl Outcome {
    /// Parses the output of `sysbench … --histogram=on run`.
    pub fn parse(out: &str) -> Result<Outcome, String> {
        let counted = |label: &str| -> Option<(u64, f64)> {
            let rest = out
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(label))?;
            let count = rest.split_whitespace().next()?.parse().ok()?;
            let rate = rest
                .split_once('(')?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((count, rate))
        };
        let unreadable = || format!("unreadable sysbench output:\n{out}");
        let (queries, qps) = counted("queries:").ok_or_else(unreadable)?;
        let (transactions, _) = counted("transactions:").ok_or_else(unreadable)?;
        let (errors, _) = counted("ignored errors:").unwrap_or((0, 0.0));
        let histogram = out
            .lines()
            .skip_while(|l| !l.starts_with("Latency histogram"))
            .filter_map(|l| {
                let (value, bar) = l.split_once('|')?;
                let value = value.trim().parse().ok()?;
                let count = bar.split_whitespace().last()?.parse().ok()?;
                Some((value, count))
            })
            .collect::<Vec<_>>();
        if histogram.is_empty() {
            return Err(format!("no latency histogram in sysbench output:\n{out}"));
        }
        Ok(Outcome {
            queries,
            qps,
            transactions,
            errors,
            histogram,
        })
    }

    /// The `p`th percentile (0–100) of transaction latency in ms: the first bucket at
    /// which the cumulative count reaches `p`% of all transactions.
    pub fn percentile(&self, p: f64) -> f64 {
        let total: u64 = self.histogram.iter().map(|(_, n)| n).sum();
        let wanted = (p / 100.0 * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(value, n) in &self.histogram {
            seen += n;
            if seen >= wanted {
                return value;
            }
        }
        f64::NAN
    }

    /// Statements per transaction (BEGIN and COMMIT included).
    pub fn statements_per_transaction(&self) -> f64 {
        self.queries as f64 / self.transactions.max(1) as f64
    }
}
