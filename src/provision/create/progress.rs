//! What `create` shows while it works, on stderr: per-table bars with rows, bytes, rate
//! and ETA on a terminal; a plain line every few seconds otherwise (logs, CI); the
//! steps as lines in both.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::catalog::Catalog;
use super::ProgressMode;

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// How often bars are redrawn.
const BARS_EVERY: Duration = Duration::from_millis(150);

/// One table's copy.
#[derive(Debug)]
struct TableState {
    name: String,
    rows_estimate: u64,
    rows: AtomicU64,
    bytes: AtomicU64,
    started: AtomicBool,
    /// Warnings green gave while loading it, and the first one.
    warnings: AtomicU64,
    first_warning: Mutex<Option<String>>,
    /// Its rows are in; its held-back indexes are being added.
    indexing: AtomicBool,
    done: AtomicBool,
}

/// Counters the copy workers add to, and the display.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    tables: Mutex<Arc<Vec<TableState>>>,
    multi: Option<MultiProgress>,
    copy_started: Mutex<Option<Instant>>,
}

impl Progress {
    /// `Auto` becomes bars on a terminal and plain lines otherwise.
    pub fn new(mode: ProgressMode) -> Arc<Progress> {
        let terminal = std::io::stderr().is_terminal();
        let mode = match mode {
            ProgressMode::Auto if terminal => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        };
        let multi = (mode == ProgressMode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Progress {
            mode,
            tables: Mutex::new(Arc::new(Vec::new())),
            multi,
            copy_started: Mutex::new(None),
        })
    }

    /// A step, as one line.
    pub fn say(&self, line: &str) {
        match (&self.mode, &self.multi) {
            (ProgressMode::Quiet, _) => {}
            (_, Some(multi)) => {
                let _ = multi.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }

    /// The tables about to be copied (in catalog order: the index workers report by).
    pub fn tables(&self, catalog: &Catalog) {
        let states = catalog
            .tables
            .iter()
            .map(|t| TableState {
                name: t.table.display_name(),
                rows_estimate: t.rows,
                rows: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                started: AtomicBool::new(false),
                warnings: AtomicU64::new(0),
                first_warning: Mutex::new(None),
                indexing: AtomicBool::new(false),
                done: AtomicBool::new(false),
            })
            .collect();
        if let Ok(mut tables) = self.tables.lock() {
            *tables = Arc::new(states);
        }
        if let Ok(mut started) = self.copy_started.lock() {
            *started = Some(Instant::now());
        }
    }

    fn states(&self) -> Arc<Vec<TableState>> {
        self.tables
            .lock()
            .map(|t| Arc::clone(&t))
            .unwrap_or_default()
    }

    /// Rows and bytes of table `index` are on green.
    pub fn add(&self, index: usize, rows: u64, bytes: u64) {
        if let Some(t) = self.states().get(index) {
            t.started.store(true, Ordering::Relaxed);
            t.rows.fetch_add(rows, Ordering::Relaxed);
            t.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Green gave `count` warnings loading table `index`, the first `first`.
    pub fn warned(&self, index: usize, count: u64, first: &str) {
        if let Some(t) = self.states().get(index) {
            t.warnings.fetch_add(count, Ordering::Relaxed);
            if let Ok(mut slot) = t.first_warning.lock() {
                slot.get_or_insert_with(|| first.to_owned());
            }
        }
    }

    /// Every table green warned about: `(table, warnings, the first)`.
    pub fn warnings(&self) -> Vec<(String, u64, String)> {
        self.states()
            .iter()
            .filter(|t| t.warnings.load(Ordering::Relaxed) > 0)
            .map(|t| {
                let first = t
                    .first_warning
                    .lock()
                    .ok()
                    .and_then(|f| f.clone())
                    .unwrap_or_default();
                (t.name.clone(), t.warnings.load(Ordering::Relaxed), first)
            })
            .collect()
    }

    /// Table `index`'s rows are in; its indexes are being added.
    pub fn indexing(&self, index: usize) {
        if let Some(t) = self.states().get(index) {
            t.indexing.store(true, Ordering::Relaxed);
        }
    }

    /// Table `index` is complete on green.
    pub fn done(&self, index: usize) {
        if let Some(t) = self.states().get(index) {
            t.done.store(true, Ordering::Relaxed);
        }
    }

    /// Rows and bytes copied so far.
    pub fn copied(&self) -> (u64, u64) {
        self.states().iter().fold((0, 0), |(r, b), t| {
            (
                r + t.rows.load(Ordering::Relaxed),
                b + t.bytes.load(Ordering::Relaxed),
            )
        })
    }

    /// Draw until `stop` is set (then once more).
    pub async fn show(self: Arc<Self>, stop: Arc<AtomicBool>) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Bars => self.bars(stop).await,
            _ => {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if last.elapsed() >= PLAIN_EVERY && !stop.load(Ordering::Relaxed) {
                        self.say(&self.line());
                        last = Instant::now();
                    }
                }
                self.say(&self.line());
            }
        }
    }

    fn elapsed(&self) -> f64 {
        self.copy_started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// `copy: 3/12 tables done, 120000 of ~500000 rows (24%), 45.1 MiB, 61234 rows/s,
    /// eta 6s; now db.t (40%), …`
    fn line(&self) -> String {
        let states = self.states();
        let estimate: u64 = states.iter().map(|t| t.rows_estimate).sum();
        let (rows, bytes) = self.copied();
        let done = states
            .iter()
            .filter(|t| t.done.load(Ordering::Relaxed))
            .count();
        let seconds = self.elapsed();
        let rate = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        let estimate = estimate.max(rows);
        let percent = (rows * 100).checked_div(estimate).unwrap_or(100);
        let eta = if rate > 0.0 {
            format!("{:.0}s", (estimate - rows) as f64 / rate)
        } else {
            "?".into()
        };
        let busy: Vec<String> = states
            .iter()
            .filter(|t| t.started.load(Ordering::Relaxed) && !t.done.load(Ordering::Relaxed))
            .take(4)
            .map(|t| {
                if t.indexing.load(Ordering::Relaxed) {
                    return format!("{} (indexes)", t.name);
                }
                let rows = t.rows.load(Ordering::Relaxed);
                let of = t.rows_estimate.max(rows).max(1);
                format!("{} ({}%)", t.name, rows * 100 / of)
            })
            .collect();
        let mut line = format!(
            "copy: {done}/{} tables done, {rows} of ~{estimate} rows ({percent}%), {:.1} MiB, \
             {rate:.0} rows/s, eta {eta}",
            states.len(),
            bytes as f64 / 1048576.0
        );
        if !busy.is_empty() {
            line.push_str("; now ");
            line.push_str(&busy.join(", "));
        }
        line
    }

    async fn bars(&self, stop: Arc<AtomicBool>) {
        let Some(multi) = &self.multi else {
            return;
        };
        let style = ProgressStyle::with_template(
            "{prefix:<32!} [{bar:28}] {human_pos:>10}/{human_len:<10} rows {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let states = self.states();
        let total = multi.add(ProgressBar::new(
            states.iter().map(|t| t.rows_estimate).sum::<u64>().max(1),
        ));
        total.set_style(style.clone());
        total.set_prefix("all tables");
        let mut bars: Vec<Option<ProgressBar>> = states.iter().map(|_| None).collect();
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            let seconds = self.elapsed();
            for (t, bar) in states.iter().zip(bars.iter_mut()) {
                let rows = t.rows.load(Ordering::Relaxed);
                let started = t.started.load(Ordering::Relaxed);
                let done = t.done.load(Ordering::Relaxed);
                match bar {
                    None if started && !done => {
                        let b =
                            multi.insert_before(&total, ProgressBar::new(t.rows_estimate.max(1)));
                        b.set_style(style.clone());
                        b.set_prefix(t.name.clone());
                        *bar = Some(b);
                    }
                    Some(b) if done => {
                        b.finish_and_clear();
                        multi.remove(b);
                        *bar = None;
                    }
                    _ => {}
                }
                if let Some(b) = bar.as_ref().filter(|_| t.indexing.load(Ordering::Relaxed)) {
                    b.set_message("adding indexes");
                } else if let Some(b) = bar {
                    b.set_length(t.rows_estimate.max(rows).max(1));
                    b.set_position(rows);
                    let seconds = b.elapsed().as_secs_f64();
                    let left = t.rows_estimate.saturating_sub(rows);
                    let eta = if rows > 0 && seconds > 0.0 {
                        format!(", eta {:.0}s", left as f64 * seconds / rows as f64)
                    } else {
                        String::new()
                    };
                    b.set_message(format!(
                        "{}{eta}",
                        rate_text(t.bytes.load(Ordering::Relaxed), rows, seconds)
                    ));
                }
            }
            let (rows, bytes) = self.copied();
            let estimate: u64 = states.iter().map(|t| t.rows_estimate).sum();
            total.set_length(estimate.max(rows).max(1));
            total.set_position(rows);
            let eta = if rows > 0 && seconds > 0.0 {
                let rate = rows as f64 / seconds;
                format!(", eta {:.0}s", (estimate.max(rows) - rows) as f64 / rate)
            } else {
                String::new()
            };
            total.set_message(format!("{}{eta}", rate_text(bytes, rows, seconds)));
            if stopping {
                total.finish_and_clear();
                for b in bars.iter().flatten() {
                    b.finish_and_clear();
                }
                self.say(&self.line());
                return;
            }
            tokio::time::sleep(BARS_EVERY).await;
        }
    }
}

/// `12.3 MiB, 45000 rows/s`.
fn rate_text(bytes: u64, rows: u64, seconds: f64) -> String {
    let rate = if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    };
    format!("{:.1} MiB, {rate:.0} rows/s", bytes as f64 / 1048576.0)
}
