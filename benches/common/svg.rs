//! Small SVG charts for the reports, written by hand (no plotting dependency): a
//! scatter/line plot over time with shaded, labelled spans (a switchover's phases),
//! and grouped bars (ratios per configuration) with an optional reference line.

use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Colours of successive series.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// How a series is drawn.
#[derive(Clone, Copy, PartialEq)]
pub enum Style {
    Dots,
    Line,
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// A shaded span of x with a label (e.g. a phase of a switchover).
pub struct Span {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub spans: Vec<Span>,
    /// Logarithmic y axis (latencies spanning orders of magnitude).
    pub log_y: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
}

/// Round tick values covering `lo..=hi`, about `n` of them.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

fn label(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 10_000.0 || v.abs() < 0.01) {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_owned()
    }
}

impl Plot {
    pub fn render(&self) -> String {
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in points {
            if self.log_y && y <= 0.0 {
                continue;
            }
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        for s in &self.spans {
            x0 = x0.min(s.from);
            x1 = x1.max(s.to);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 == x0 {
            x1 = x0 + 1.0;
        }
        let fy = |y: f64| if self.log_y { y.max(1e-9).log10() } else { y };
        let (ly0, ly1) = if self.log_y {
            (fy(y0).floor(), fy(y1).ceil().max(fy(y0).floor() + 1.0))
        } else {
            (0.0f64.min(y0), if y1 > 0.0 { y1 * 1.05 } else { 1.0 })
        };
        let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
        let py = |y: f64| H - BOTTOM - (fy(y) - ly0) / (ly1 - ly0) * (H - TOP - BOTTOM);
        let mut out = String::new();
        header(&mut out, &self.title);
        for (i, s) in self.spans.iter().enumerate() {
            let (a, b) = (px(s.from), px(s.to).max(px(s.from) + 1.0));
            let fill = if i % 2 == 0 { "#ffe9a8" } else { "#ffd0c0" };
            let _ = write!(
                out,
                r#"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{fill}" opacity="0.7"/><text x="{a:.1}" y="{}" font-size="10" transform="rotate(-90 {a:.1},{})">{}</text>"#,
                b - a,
                H - TOP - BOTTOM,
                TOP + 4.0,
                TOP + 4.0,
                esc(&s.label)
            );
        }
        // Axes and ticks.
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#333"/>"##,
            H - BOTTOM,
            W - RIGHT,
            H - BOTTOM,
            H - BOTTOM
        );
        for t in ticks(x0, x1, 8) {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                px(t),
                H - BOTTOM + 16.0,
                label(t)
            );
        }
        let y_ticks: Vec<f64> = if self.log_y {
            (ly0 as i32..=ly1 as i32).map(|e| 10f64.powi(e)).collect()
        } else {
            ticks(ly0, ly1, 6)
        };
        for t in y_ticks {
            let y = py(t);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                label(t)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16,{})">{}</text>"#,
            (LEFT + W - RIGHT) / 2.0,
            H - 22.0,
            esc(&self.x_label),
            (TOP + H - BOTTOM) / 2.0,
            (TOP + H - BOTTOM) / 2.0,
            esc(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let visible = s.points.iter().filter(|(_, y)| !self.log_y || *y > 0.0);
            match s.style {
                Style::Dots => {
                    for &(x, y) in visible {
                        let _ = write!(
                            out,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{colour}" fill-opacity="0.6"/>"#,
                            px(x),
                            py(y)
                        );
                    }
                }
                Style::Line => {
                    let path: Vec<String> = visible
                        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                        .collect();
                    let _ = write!(
                        out,
                        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                        path.join(" ")
                    );
                }
            }
            legend(&mut out, i, colour, &s.name);
        }
        out.push_str("</svg>\n");
        out
    }
}

fn legend(out: &mut String, i: usize, colour: &str, name: &str) {
    let x = LEFT + 10.0 + (i % 4) as f64 * 200.0;
    let y = H - 8.0 - (i / 4) as f64 * 14.0;
    let _ = write!(
        out,
        r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{y}">{}</text>"#,
        y - 9.0,
        x + 14.0,
        esc(name)
    );
}

/// Grouped bars: one group per label, one bar per series in each.
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    /// `(series name, one value per group)`.
    pub series: Vec<(String, Vec<f64>)>,
    /// A dashed horizontal line, e.g. at a ratio of 1.0.
    pub reference: Option<f64>,
}

impl Bars {
    pub fn render(&self) -> String {
        let max = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain(self.reference)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.1;
        let py = |y: f64| H - BOTTOM - y / max * (H - TOP - BOTTOM);
        let mut out = String::new();
        header(&mut out, &self.title);
        let groups = self.groups.len().max(1) as f64;
        let group_w = (W - LEFT - RIGHT) / groups;
        let bar_w = group_w * 0.8 / self.series.len().max(1) as f64;
        for t in ticks(0.0, max, 6) {
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                py(t),
                W - RIGHT,
                py(t),
                LEFT - 6.0,
                py(t) + 4.0,
                label(t)
            );
        }
        for (g, name) in self.groups.iter().enumerate() {
            let gx = LEFT + g as f64 * group_w;
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="end" font-size="10" transform="rotate(-30 {:.1},{})">{}</text>"#,
                gx + group_w / 2.0,
                H - BOTTOM + 14.0,
                gx + group_w / 2.0,
                H - BOTTOM + 14.0,
                esc(name)
            );
            for (i, (_, values)) in self.series.iter().enumerate() {
                let Some(&v) = values.get(g) else { continue };
                if !v.is_finite() {
                    continue;
                }
                let _ = write!(
                    out,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                    gx + group_w * 0.1 + i as f64 * bar_w,
                    py(v),
                    bar_w * 0.95,
                    H - BOTTOM - py(v),
                    PALETTE[i % PALETTE.len()]
                );
            }
        }
        if let Some(r) = self.reference {
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#000" stroke-dasharray="6,4"/>"##,
                py(r),
                W - RIGHT,
                py(r)
            );
        }
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#333"/><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16,{})">{}</text>"##,
            H - BOTTOM,
            W - RIGHT,
            H - BOTTOM,
            (TOP + H - BOTTOM) / 2.0,
            (TOP + H - BOTTOM) / 2.0,
            esc(&self.y_label)
        );
        for (i, (name, _)) in self.series.iter().enumerate() {
            legend(&mut out, i, PALETTE[i % PALETTE.len()], name);
        }
        out.push_str("</svg>\n");
        out
    }
}
