//! Criterion's own estimate of one benchmark, read back from
//! `<criterion dir>/<group>/<name>/new/estimates.json` after the run.

use std::path::Path;
use std::time::SystemTime;

/// Time per iteration in nanoseconds: the point estimate and its 95 % interval.
pub struct Estimate {
    pub ns: f64,
    pub low: f64,
    pub high: f64,
}

/// The estimate criterion prints: the slope of the linear fit when it sampled that
/// way, else the mean. An estimate written before `since` is from another run (this
/// one filtered the benchmark out) and is not taken.
pub fn read(dir: &Path, group: &str, name: &str, since: SystemTime) -> Result<Estimate, String> {
    let path = dir.join(group).join(name).join("new/estimates.json");
    let written = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if written < since {
        return Err(format!("{}: from an earlier run", path.display()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let typical = json
        .get("slope")
        .filter(|s| !s.is_null())
        .or_else(|| json.get("mean"))
        .ok_or_else(|| format!("{}: no slope or mean", path.display()))?;
    let number = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("{}: malformed estimate", path.display()))
    };
    let interval = typical.get("confidence_interval");
    Ok(Estimate {
        ns: number(typical.get("point_estimate"))?,
        low: number(interval.and_then(|i| i.get("lower_bound")))?,
        high: number(interval.and_then(|i| i.get("upper_bound")))?,
    })
}

/// A duration in the unit that suits it.
pub fn time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}
