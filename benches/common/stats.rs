//! Small statistics over measured values.

/// The median of `values` (the mean of the middle two for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`th percentile (0–100) of `values` by linear interpolation between closest
/// ranks; NaN if empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let (a, b) = (sorted[low], sorted[high]);
    a + (b - a) * (rank - low as f64)
}

/// Smallest and largest of `values`; NaNs if empty.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::NAN, f64::NAN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// `median (min–max)` with `digits` decimals, the way the reports print a spread.
pub fn spread(values: &[f64], digits: usize) -> String {
    let (lo, hi) = min_max(values);
    format!("{:.digits$} ({lo:.digits$}–{hi:.digits$})", median(values))
}
