//! What the samples say about each switchover: the application-visible pause (the
//! longest gap between completions, and the slowest statement) inside its window, the
//! slowest statement while connections were being pre-opened, and the same figures
//! outside every window for comparison.

use super::load::{Kind, Sample};
use super::switch::Switch;

/// Time around a switchover's window that the "outside" figures leave out, s.
const MARGIN: f64 = 0.25;

/// One switchover as the clients saw it (ms).
pub struct Seen {
    /// Longest gap between two completions that overlaps the window.
    pub gap_ms: f64,
    /// Slowest statement (from its scheduled time) overlapping the window.
    pub max_ms: f64,
    pub max_read_ms: f64,
    pub max_write_ms: f64,
    /// Slowest statement answered during the pre-open part of the precheck, and the
    /// 99th percentile of those.
    pub pre_open_max_ms: f64,
    pub pre_open_p99_ms: f64,
    /// The same in a span as long just before the switchover began (the control: a
    /// longer span has a higher maximum whatever runs in it).
    pub before_max_ms: f64,
    pub before_p99_ms: f64,
    /// Slowest statement answered during the rest of the precheck (the guardrails).
    pub guardrails_max_ms: f64,
    /// Slowest statement due after the gate opened (sessions moving to the new side).
    pub after_open_max_ms: f64,
    /// Errors in the window, by code.
    pub errors: Vec<(u16, usize)>,
}

/// The same figures away from every switchover (ms).
pub struct Outside {
    pub gap_ms: f64,
    pub max_ms: f64,
    pub p99_ms: f64,
}

fn overlaps(s: &Sample, from: f64, to: f64) -> bool {
    s.due <= to && s.done >= from
}

/// Slowest statement of `kind` (any kind for `None`) overlapping `from..to`, ms.
fn slowest(samples: &[Sample], from: f64, to: f64, kind: Option<Kind>) -> f64 {
    samples
        .iter()
        .filter(|s| kind.is_none_or(|k| s.kind == k) && overlaps(s, from, to))
        .map(|s| s.latency() * 1000.0)
        .fold(0.0, f64::max)
}

/// Latencies of the statements answered within `from..to`, ms, sorted.
fn answered(samples: &[Sample], from: f64, to: f64) -> Vec<f64> {
    let mut ms: Vec<f64> = samples
        .iter()
        .filter(|s| s.done >= from && s.done <= to)
        .map(|s| s.latency() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// The `p`th percentile (nearest rank) of sorted `ms`; NaN if empty.
fn rank(ms: &[f64], p: usize) -> f64 {
    ms.get(ms.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Longest gap between consecutive completions (`done`, sorted) that overlaps
/// `from..to`, ms.
fn longest_gap(done: &[f64], from: f64, to: f64) -> f64 {
    done.windows(2)
        .filter(|w| w[0] <= to && w[1] >= from)
        .map(|w| (w[1] - w[0]) * 1000.0)
        .fold(0.0, f64::max)
}

/// When `name` began in `switch` (its first reply line), if it was reported.
fn mark(switch: &Switch, name: &str) -> Option<f64> {
    switch.marks.iter().find(|m| m.name == name).map(|m| m.at)
}

/// Completion times, sorted.
pub fn completions(samples: &[Sample]) -> Vec<f64> {
    let mut done: Vec<f64> = samples.iter().map(|s| s.done).collect();
    done.sort_by(f64::total_cmp);
    done
}

pub fn seen(samples: &[Sample], done: &[f64], switch: &Switch) -> Seen {
    let (from, to) = (switch.start, switch.end);
    let precheck = mark(switch, "precheck").unwrap_or(from);
    let pre_open = mark(switch, "pre_open");
    let after_pre_open = mark(switch, "draining").unwrap_or(to);
    // The pre-open and, as a control, a span as long before the switchover began.
    let (during, before) = match pre_open {
        Some(p) => {
            let span = (after_pre_open - p).max(0.05);
            (
                answered(samples, p, after_pre_open),
                answered(samples, from - MARGIN - span, from - MARGIN),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut errors: Vec<(u16, usize)> = Vec::new();
    for s in samples
        .iter()
        .filter(|s| s.error != 0 && overlaps(s, from, to))
    {
        match errors.iter_mut().find(|(c, _)| *c == s.error) {
            Some((_, n)) => *n += 1,
            None => errors.push((s.error, 1)),
        }
    }
    Seen {
        gap_ms: longest_gap(done, from, to),
        max_ms: slowest(samples, from, to, None),
        max_read_ms: slowest(samples, from, to, Some(Kind::Read)),
        max_write_ms: slowest(samples, from, to, Some(Kind::Write)),
        pre_open_max_ms: rank(&during, 100),
        pre_open_p99_ms: rank(&during, 99),
        before_max_ms: rank(&before, 100),
        before_p99_ms: rank(&before, 99),
        guardrails_max_ms: rank(
            &answered(samples, precheck, pre_open.unwrap_or(after_pre_open)),
            100,
        ),
        after_open_max_ms: mark(switch, "done")
            .map(|open| {
                samples
                    .iter()
                    .filter(|s| s.due >= open && s.due <= to + MARGIN)
                    .map(|s| s.latency() * 1000.0)
                    .fold(0.0, f64::max)
            })
            .unwrap_or(f64::NAN),
        errors,
    }
}

/// Figures for the load away from every switchover (and after the first `warm_up`
/// seconds of `load_from..load_to`).
pub fn outside(
    samples: &[Sample],
    done: &[f64],
    switches: &[Switch],
    load_from: f64,
    load_to: f64,
) -> Outside {
    let away = |from: f64, to: f64| {
        from >= load_from
            && to <= load_to
            && switches
                .iter()
                .all(|w| to < w.start - MARGIN || from > w.end + MARGIN)
    };
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|s| away(s.due, s.done))
        .map(|s| s.latency() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let gap_ms = done
        .windows(2)
        .filter(|w| away(w[0], w[1]))
        .map(|w| (w[1] - w[0]) * 1000.0)
        .fold(0.0, f64::max);
    Outside {
        gap_ms,
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        p99_ms: latencies
            .get(latencies.len().saturating_sub(1) * 99 / 100)
            .copied()
            .unwrap_or(f64::NAN),
    }
}
