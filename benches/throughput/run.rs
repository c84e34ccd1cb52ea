//! One flavor's measurements: its pair, the proxies and HAProxy in front of blue, the
//! sysbench tables, then the interleaved rotations over every cell and target.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use switchyard::testbed::{free_port, Flavor, Pair, APP_PASSWORD, APP_USER};

use crate::common::bed::{self, Process};
use crate::common::proc_stats::ProcStats;
use crate::sysbench::{self, Endpoint, Mode, Outcome};
use crate::Knobs;

/// Where sysbench connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Direct,
    Haproxy,
    Switchyard,
    /// A second switchyard requiring TLS from its clients.
    SwitchyardTls,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Haproxy => "HAProxy",
            Target::Switchyard => "switchyard",
            Target::SwitchyardTls => "switchyard-tls",
        }
    }
}

/// A workload in a mode at a thread count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub workload: String,
    pub mode: Mode,
    pub threads: u32,
}

impl Cell {
    /// The targets measured in this cell: TLS only on text point selects and
    /// read-only, which is enough to show what the handshake-free steady state costs.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = vec![Target::Direct, Target::Haproxy, Target::Switchyard];
        if self.mode == Mode::Text
            && matches!(
                self.workload.as_str(),
                "oltp_point_select" | "oltp_read_only"
            )
        {
            targets.push(Target::SwitchyardTls);
        }
        targets
    }

    pub fn label(&self) -> String {
        format!(
            "{} {} {}",
            self.workload.trim_start_matches("oltp_"),
            self.mode.name(),
            self.threads
        )
    }
}

/// One run of one target in one cell.
#[derive(Debug, Clone)]
pub struct Sample {
    pub outcome: Outcome,
    /// The proxy process's CPU seconds and context switches during the run (none for
    /// direct).
    pub proc: Option<ProcStats>,
}

impl Sample {
    pub fn cpu_us_per_query(&self) -> Option<f64> {
        self.proc
            .map(|p| p.cpu_secs * 1e6 / self.outcome.queries.max(1) as f64)
    }

    pub fn switches_per_query(&self) -> Option<f64> {
        self.proc
            .map(|p| p.ctx_switches as f64 / self.outcome.queries.max(1) as f64)
    }
}

/// Everything measured on one flavor: samples in rotation order.
pub struct FlavorResult {
    pub flavor: Flavor,
    pub version: String,
    pub cells: Vec<Cell>,
    pub samples: BTreeMap<(Cell, Target), Vec<Sample>>,
}

impl FlavorResult {
    pub fn samples(&self, cell: &Cell, target: Target) -> &[Sample] {
        self.samples
            .get(&(cell.clone(), target))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The cells of a run, in the order knobs list them.
pub fn cells(knobs: &Knobs) -> Vec<Cell> {
    let mut cells = Vec::new();
    for workload in &knobs.workloads {
        for &mode in &knobs.modes {
            for &threads in &knobs.threads {
                cells.push(Cell {
                    workload: workload.clone(),
                    mode,
                    threads,
                });
            }
        }
    }
    cells
}

/// A self-signed certificate for the TLS proxy, written as sysbench 1.0 wants it in
/// `dir` (`cacert.pem`, `client-cert.pem`, `client-key.pem`: the client presents
/// the same pair, which the proxy does not ask for) plus `proxy-cert.pem` and
/// `proxy-key.pem` (0600: the proxy refuses a key others can read).
fn certificates(dir: &Path) -> Result<(), String> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let issued = rcgen::generate_simple_self_signed(names).map_err(|e| format!("rcgen: {e}"))?;
    let cert = issued.cert.pem();
    let key = issued.key_pair.serialize_pem();
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, text) in [
        ("cacert.pem", &cert),
        ("client-cert.pem", &cert),
        ("client-key.pem", &key),
        ("proxy-cert.pem", &cert),
        ("proxy-key.pem", &key),
    ] {
        let path = dir.join(file);
        let _ = fs::remove_file(&path);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// MySQL's `caching_sha2_password` lets a plaintext client in at once only from its
/// cache; on a miss the client must fetch the server's RSA key, which libmariadb does
/// and libmysqlclient (without `get-server-public-key`, which sysbench never sets) does
/// not. One login over TLS with the build's own client fills the cache, so sysbench
/// logs in with either library.
fn warm_sha2_cache(pair: &Pair) -> Result<(), String> {
    let (host, port) = pair
        .blue
        .addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .ok_or("blue has no host:port")?;
    let out = pair
        .blue
        .build()
        .client()
        .args([
            "--protocol=TCP",
            "--ssl-mode=REQUIRED",
            "-h",
            &host,
            "-P",
            &port,
        ])
        .arg(format!("-u{APP_USER}"))
        .arg(format!("-p{APP_PASSWORD}"))
        .args(["-N", "-e", "SELECT 1"])
        .output()
        .map_err(|e| format!("mysql client: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "warming MySQL's caching_sha2_password cache over TLS: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The processes in front of blue.
struct Bed {
    pair: Pair,
    switchyard: Process,
    tls: Process,
    haproxy: Process,
    tls_dir: std::path::PathBuf,
}

impl Bed {
    fn start(flavor: Flavor) -> Result<Bed, String> {
        let pair = bed::pair(flavor, &[])?;
        if flavor == Flavor::MySql {
            warm_sha2_cache(&pair)?;
        }
        let port = free_port();
        let config = bed::proxy_config(&pair, "switchyard", port, "", "");
        let switchyard = bed::proxy(&pair, "switchyard", port, &config)?;
        let tls_dir = pair.dir().join("sysbench-tls");
        certificates(&tls_dir)?;
        let port = free_port();
        let tls_toml = format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire_secure_transport = true\n",
            tls_dir.join("proxy-cert.pem").display(),
            tls_dir.join("proxy-key.pem").display()
        );
        let config = bed::proxy_config(&pair, "switchyard-tls", port, "", &tls_toml);
        let tls = bed::proxy(&pair, "switchyard-tls", port, &config)?;
        let haproxy = bed::haproxy(&pair, &pair.blue.addr())?;
        Ok(Bed {
            pair,
            switchyard,
            tls,
            haproxy,
            tls_dir,
        })
    }

    fn blue_port(&self) -> Result<u16, String> {
        self.pair
            .blue
            .addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| "blue has no port".to_owned())
    }

    /// Where sysbench connects for `target`, and the process whose accounting counts.
    fn endpoint(&self, target: Target) -> Result<(Endpoint<'_>, Option<&Process>), String> {
        let plain = |port| Endpoint {
            port,
            tls_dir: None,
        };
        Ok(match target {
            Target::Direct => (plain(self.blue_port()?), None),
            Target::Haproxy => (plain(self.haproxy.port), Some(&self.haproxy)),
            Target::Switchyard => (plain(self.switchyard.port), Some(&self.switchyard)),
            Target::SwitchyardTls => (
                Endpoint {
                    port: self.tls.port,
                    tls_dir: Some(&self.tls_dir),
                },
                Some(&self.tls),
            ),
        })
    }

    /// One sysbench run of `cell` against `target`.
    fn measure(&self, cell: &Cell, target: Target, secs: u64) -> Result<Sample, String> {
        let (endpoint, process) = self.endpoint(target)?;
        let mut cmd = sysbench::command(&cell.workload, &endpoint);
        cmd.arg(format!("--threads={}", cell.threads))
            .arg(format!("--time={secs}"))
            .arg(format!("--db-ps-mode={}", cell.mode.ps_mode()))
            .args(["--histogram=on", "--report-interval=0", "run"]);
        let before = process.map(|p| ProcStats::read(p.pid())).transpose()?;
        let out = sysbench::output(cmd, &format!("{} {}", target.name(), cell.label()));
        let after = process.map(|p| ProcStats::read(p.pid())).transpose();
        let out = out.map_err(|e| match process {
            Some(p) => format!("{e}\n{} log:\n{}", p.name, p.log()),
            None => e,
        })?;
        let proc = match (before, after?) {
            (Some(b), Some(a)) => Some(a.since(&b)),
            _ => None,
        };
        Ok(Sample {
            outcome: Outcome::parse(&out)?,
            proc,
        })
    }
}

/// Starts `flavor`'s bed, loads the tables and runs every rotation.
pub fn flavor(flavor: Flavor, knobs: &Knobs) -> Result<FlavorResult, String> {
    eprintln!(
        "{}: starting the pair, switchyard (plaintext and TLS) and HAProxy",
        flavor.name()
    );
    let bed = Bed::start(flavor)?;
    let version = bed.pair.blue.build().version().unwrap_or_default();
    let blue = Endpoint {
        port: bed.blue_port()?,
        tls_dir: None,
    };
    let mut prepare = sysbench::command("oltp_read_write", &blue);
    prepare.args(["--threads=4", "prepare"]);
    sysbench::output(prepare, "prepare")?;
    let cells = cells(knobs);
    let plan: Vec<(Cell, Target)> = cells
        .iter()
        .flat_map(|c| c.targets().into_iter().map(move |t| (c.clone(), t)))
        .collect();
    let mut samples: BTreeMap<(Cell, Target), Vec<Sample>> = BTreeMap::new();
    let started = Instant::now();
    let total = plan.len() * knobs.rotations;
    let mut done = 0;
    for rotation in 0..knobs.rotations {
        let order: Vec<&(Cell, Target)> = if rotation % 2 == 0 {
            plan.iter().collect()
        } else {
            plan.iter().rev().collect()
        };
        for (cell, target) in order {
            let sample = bed.measure(cell, *target, knobs.secs)?;
            done += 1;
            let left = started.elapsed().as_secs_f64() / done as f64 * (total - done) as f64;
            eprintln!(
                "{} rotation {}/{}: {:<28} {:<15} {:>9.0} qps  ({done}/{total}, ~{:.0} s left)",
                flavor.name(),
                rotation + 1,
                knobs.rotations,
                cell.label(),
                target.name(),
                sample.outcome.qps,
                left
            );
            samples
                .entry((cell.clone(), *target))
                .or_default()
                .push(sample);
        }
    }
    Ok(FlavorResult {
        flavor,
        version,
        cells,
        samples,
    })
}
