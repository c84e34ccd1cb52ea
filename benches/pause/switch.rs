//! One switchover through the admin socket (`switchover --json`), with the time each
//! reply line arrived, so the phases can be laid over the load's own clock; and the
//! proxy's open descriptors sampled while it runs.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A phase as the client saw it: its name and when its first line arrived (seconds
/// since the run's origin). `pre_open` is the part of the precheck that pre-opens
/// connections.
pub struct Mark {
    pub name: String,
    pub at: f64,
    /// CPU seconds used so far by the proxy, blue and green when the line arrived.
    pub cpu: [f64; 3],
}

/// What one switchover answered.
pub struct Switch {
    pub start: f64,
    pub end: f64,
    pub ok: bool,
    /// The final line's message.
    pub message: String,
    /// Phase starts as the reply lines arrived.
    pub marks: Vec<Mark>,
    /// The proxy's own phase durations (`report.phases`), ms.
    pub phases: Vec<(String, f64)>,
    /// `report.preopen_ms` when the proxy reports it.
    pub preopen_ms: Option<f64>,
    pub pause_ms: f64,
    /// The side that is primary after it (`report.to`, or `report.from` if it failed).
    pub primary: String,
    /// Most descriptors the proxy had open while it ran.
    pub peak_fds: usize,
}

/// Reply lines with their arrival times.
struct Timed {
    origin: Instant,
    pids: [u32; 3],
    lines: Vec<(f64, [f64; 3], String)>,
    partial: Vec<u8>,
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let at = self.origin.elapsed().as_secs_f64();
        let cpu = self
            .pids
            .map(|pid| super::common::proc_stats::cpu_secs(pid).unwrap_or(0.0));
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.lines
                .push((at, cpu, String::from_utf8_lossy(&line).trim().to_owned()));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The number of descriptors `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `pid`'s soft limit on open files, from `/proc/PID/limits`.
pub fn fd_limit(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Samples `pid`'s open descriptors every few ms on a thread until dropped.
pub struct FdSampler {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdSampler {
    pub fn start(pid: u32) -> FdSampler {
        let peak = Arc::new(AtomicUsize::new(open_fds(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(open_fds(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        FdSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Runs `switchover --json` on `socket`, timing its lines against `origin`; `pids`:
/// the proxy's, blue's and green's.
pub async fn run(socket: &Path, origin: Instant, pids: [u32; 3]) -> Result<Switch, String> {
    let sampler = FdSampler::start(pids[0]);
    let mut out = Timed {
        origin,
        pids,
        lines: Vec::new(),
        partial: Vec::new(),
    };
    let start = origin.elapsed().as_secs_f64();
    let ok = switchyard::admin::client::run(socket, &["switchover".to_string()], true, &mut out)
        .await
        .map_err(|e| format!("switchover: {e}"))?;
    let end = origin.elapsed().as_secs_f64();
    let peak_fds = sampler.finish();
    let mut switch = Switch {
        start,
        end,
        ok,
        message: String::new(),
        marks: Vec::new(),
        phases: Vec::new(),
        preopen_ms: None,
        pause_ms: 0.0,
        primary: String::new(),
        peak_fds,
    };
    for (at, cpu, line) in &out.lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let message = v["message"].as_str().unwrap_or_default();
        if let Some(phase) = v["phase"].as_str() {
            let name = if message.contains("pre-opening connections") {
                "pre_open"
            } else {
                phase
            };
            if switch.marks.last().map(|m| m.name.as_str()) != Some(name) {
                switch.marks.push(Mark {
                    name: name.to_owned(),
                    at: *at,
                    cpu: *cpu,
                });
            }
        }
        if matches!(v["type"].as_str(), Some("ok" | "err")) {
            switch.message = message.to_owned();
            let report = &v["report"];
            switch.pause_ms = report["pause_ms"].as_f64().unwrap_or(0.0);
            switch.preopen_ms = report["preopen_ms"].as_f64();
            switch.primary = report[if ok { "to" } else { "from" }]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for p in report["phases"].as_array().into_iter().flatten() {
                if let (Some(name), Some(ms)) = (p[0].as_str(), p[1].as_f64()) {
                    switch.phases.push((name.to_owned(), ms));
                }
            }
        }
    }
    Ok(switch)
}
