//! The inline SVG line chart of the HTML post-mortem: `Input::chart` around the incident, with
//! the deployments' finish times and the key moments as labelled vertical lines.
//!
//! Everything is computed here, deterministically, in a fixed 960-unit-wide view box that the
//! page scales. Marker labels are stacked in rows above the plot so close moments do not
//! overlap; each marker has its own dash pattern as well as its own colour and label, so no
//! information is carried by colour alone. The `<title>` and `<desc>` say in words what the
//! chart shows, for screen readers.

use std::fmt::Write as _;

use super::html::escape;
use super::{Input, KeyMoments, Moment, human_duration, is_fix, rfc3339};
use crate::incident::EntryKind;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 24.0;
const PLOT_HEIGHT: f64 = 240.0;
const ROW: f64 = 17.0;
/// Average advance of a 12 px sans-serif character, for laying out labels.
const CHAR_WIDTH: f64 = 6.9;

/// How a marker line is drawn: colour (each at least 4.5:1 against white, as its label is
/// text) and dash pattern.
#[derive(Clone, Copy)]
struct Style {
    color: &'static str,
    dash: &'static str,
}

const DEPLOY: Style = Style {
    color: "#8a4500",
    dash: "8 4",
};
const IMPACT: Style = Style {
    color: "#b3261e",
    dash: "2 3",
};
const MILESTONE: Style = Style {
    color: "#374151",
    dash: "5 3 1 3",
};
const LINE: &str = "#1f5fbf";
const INK: &str = "#1a1a1a";
const MUTED: &str = "#4b5563";
const GRID: &str = "#d9dee4";

struct Marker {
    at: i64,
    label: String,
    style: Style,
}

/// The chart's ids, referenced by `aria-labelledby`.
pub(super) const TITLE_ID: &str = "chart-title";
pub(super) const DESC_ID: &str = "chart-desc";

fn markers(input: &Input, m: &KeyMoments) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in &input.deployments {
        let dep = &d.deployment;
        seen.insert(dep.id.clone());
        let what = if is_fix(input, d) { "Fix" } else { "Deploy" };
        out.push(Marker {
            at: dep.finished_at,
            label: format!("{what} {}", dep.id),
            style: DEPLOY,
        });
    }
    for e in &input.timeline {
        if e.kind != EntryKind::Deployment {
            continue;
        }
        let id = e.refs.get("deployment").cloned().unwrap_or_default();
        if !id.is_empty() && !seen.insert(id.clone()) {
            continue;
        }
        out.push(Marker {
            at: e.at,
            label: if id.is_empty() {
                "Deploy".to_owned()
            } else {
                format!("Deploy {id}")
            },
            style: DEPLOY,
        });
    }
    for moment in Moment::ALL {
        if let Some(at) = m.at(moment) {
            out.push(Marker {
                at,
                label: moment.label().to_owned(),
                style: if moment == Moment::ImpactStart {
                    IMPACT
                } else {
                    MILESTONE
                },
            });
        }
    }
    out.sort_by_key(|m| m.at);
    out
}

/// A step of 1, 2 or 5 × 10ⁿ that cuts `span` into about `parts`.
fn nice_step(span: f64, parts: f64) -> f64 {
    let raw = span / parts;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A tick value without float noise: as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_owned()
    } else {
        s
    }
}

/// `HH:MM` of a time (UTC), with the date when the chart spans days.
fn clock(ms: i64, with_date: bool) -> String {
    let t = rfc3339(ms);
    let part = if with_date {
        t.get(5..16).map(|s| s.replacen('T', " ", 1))
    } else {
        t.get(11..16).map(str::to_owned)
    };
    part.unwrap_or(t)
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as an `<svg>` element, or `None` when there is no chart or no finite value in it.
pub(super) fn svg(input: &Input, m: &KeyMoments) -> Option<String> {
    let chart = input.chart.as_ref()?;
    let finite: Vec<(i64, f64)> = chart
        .points
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let first = finite.iter().map(|p| p.0).min()?;
    let last = finite.iter().map(|p| p.0).max()?;
    let markers = markers(input, m);
    let t0 = markers.iter().map(|m| m.at).fold(first, i64::min);
    let mut t1 = markers.iter().map(|m| m.at).fold(last, i64::max);
    if t1 <= t0 {
        t1 = t0 + 60_000;
    }
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    if lo >= 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let y_step = nice_step(hi - lo, 5.0);
    let lo = (lo / y_step).floor() * y_step;
    let hi = (hi / y_step).ceil() * y_step;

    // Marker labels in rows: the first row where the label fits after the previous one.
    let plot_right = WIDTH - RIGHT;
    let x_of = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (plot_right - LEFT);
    let mut row_ends: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for mk in &markers {
        let x = x_of(mk.at);
        let w = mk.label.chars().count() as f64 * CHAR_WIDTH;
        let (start, anchor_end) = if x + 4.0 + w > WIDTH - 4.0 {
            (x - 4.0 - w, true)
        } else {
            (x + 4.0, false)
        };
        let row = match row_ends.iter().position(|&end| end + 6.0 < start) {
            Some(r) => r,
            None => {
                row_ends.push(f64::NEG_INFINITY);
                row_ends.len() - 1
            }
        };
        row_ends[row] = start + w;
        placed.push((mk, x, row, anchor_end));
    }
    let top = 14.0 + row_ends.len() as f64 * ROW + 6.0;
    let bottom = top + PLOT_HEIGHT;
    let height = bottom + 48.0;
    let y_of = |v: f64| bottom - (v - lo) / (hi - lo) * PLOT_HEIGHT;

    let (vmin, vmax) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(_, v)| {
            (a.min(v), b.max(v))
        });
    let unit = if chart.unit.trim().is_empty() {
        String::new()
    } else {
        format!(" {}", chart.unit)
    };
    let mut desc = format!(
        "Line chart of {}{}: {} points from {} to {}, values from {}{unit} to {}{unit}.",
        chart.title,
        if chart.unit.trim().is_empty() {
            String::new()
        } else {
            format!(" (unit: {})", chart.unit)
        },
        finite.len(),
        rfc3339(first),
        rfc3339(last),
        tick_label(vmin, y_step / 100.0),
        tick_label(vmax, y_step / 100.0),
    );
    if !markers.is_empty() {
        desc.push_str(" Vertical lines mark: ");
        let parts: Vec<String> = markers
            .iter()
            .map(|mk| {
                let rel = mk.at - m.detected;
                let rel = match rel.cmp(&0) {
                    std::cmp::Ordering::Less => {
                        format!("{} before detection", human_duration(-rel))
                    }
                    std::cmp::Ordering::Equal => "at detection".to_owned(),
                    std::cmp::Ordering::Greater => {
                        format!("{} after detection", human_duration(rel))
                    }
                };
                format!("{} at {} ({rel})", mk.label, rfc3339(mk.at))
            })
            .collect();
        desc.push_str(&parts.join("; "));
        desc.push('.');
    }

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg role="img" aria-labelledby="{TITLE_ID} {DESC_ID}" viewBox="0 0 {WIDTH} {}" width="{WIDTH}" height="{}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif" font-size="12">"#,
        fmt(height),
        fmt(height)
    );
    let _ = write!(
        s,
        r#"<title id="{TITLE_ID}">{}</title><desc id="{DESC_ID}">{}</desc>"#,
        escape(&format!(
            "{}{}",
            chart.title,
            if chart.unit.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", chart.unit)
            }
        )),
        escape(&desc)
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{}" fill="#ffffff"/>"##,
        fmt(height)
    );

    // The incident window, lightly shaded: from the impact start (or detection) to the
    // mitigation (or resolution, or the end of the chart). Decorative: the vertical lines
    // and their labels say the same.
    let window_start = m.impact_start.unwrap_or(m.detected);
    let window_end = m.mitigated.or(m.resolved).unwrap_or(t1);
    if window_end > window_start {
        let (a, b) = (x_of(window_start), x_of(window_end));
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fdeceb"/>"##,
            fmt(a),
            fmt(top),
            fmt(b - a),
            fmt(PLOT_HEIGHT)
        );
    }

    // Y grid and ticks.
    let mut v = lo;
    let mut n = 0;
    while v <= hi + y_step / 2.0 && n < 50 {
        let y = y_of(v);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" x2="{plot_right}" y1="{0}" y2="{0}" stroke="{GRID}" stroke-width="1"/><text x="{1}" y="{2}" text-anchor="end" fill="{INK}">{3}</text>"#,
            fmt(y),
            fmt(LEFT - 8.0),
            fmt(y + 4.0),
            escape(&tick_label(v, y_step))
        );
        v += y_step;
        n += 1;
    }
    if !chart.unit.trim().is_empty() {
        let _ = write!(
            s,
            r#"<text x="16" y="{0}" transform="rotate(-90 16 {0})" text-anchor="middle" fill="{MUTED}">{1}</text>"#,
            fmt(top + PLOT_HEIGHT / 2.0),
            escape(&chart.unit)
        );
    }

    // X ticks: the first step that gives at most eight.
    const STEPS: [i64; 14] = [
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        604_800_000,
        2_592_000_000,
    ];
    let span = t1 - t0;
    let step = STEPS
        .iter()
        .copied()
        .find(|st| span / st <= 8)
        .unwrap_or(2_592_000_000);
    let with_date = span > 86_400_000 || step >= 86_400_000;
    let mut t = t0.div_euclid(step) * step;
    if t < t0 {
        t += step;
    }
    while t <= t1 {
        let x = x_of(t);
        let _ = write!(
            s,
            r#"<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="{INK}" stroke-width="1"/><text x="{0}" y="{3}" text-anchor="middle" fill="{INK}">{4}</text>"#,
            fmt(x),
            fmt(bottom),
            fmt(bottom + 5.0),
            fmt(bottom + 19.0),
            escape(&clock(t, with_date))
        );
        t += step;
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="{MUTED}">Time (UTC)</text>"#,
        fmt((LEFT + plot_right) / 2.0),
        fmt(bottom + 40.0)
    );
    // Axes.
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" x2="{LEFT}" y1="{0}" y2="{1}" stroke="{INK}" stroke-width="1"/><line x1="{LEFT}" x2="{plot_right}" y1="{1}" y2="{1}" stroke="{INK}" stroke-width="1"/>"#,
        fmt(top),
        fmt(bottom)
    );

    // The series: gaps where a value is not finite.
    let mut path = String::new();
    let mut pen_down = false;
    for &(t, v) in &chart.points {
        if !v.is_finite() {
            pen_down = false;
            continue;
        }
        let _ = write!(
            path,
            "{}{},{} ",
            if pen_down { "L" } else { "M" },
            fmt(x_of(t)),
            fmt(y_of(v))
        );
        pen_down = true;
    }
    let _ = write!(
        s,
        r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2" stroke-linejoin="round"/>"#,
        path.trim_end()
    );

    // Markers over the series, labels above the plot.
    for (mk, x, row, anchor_end) in placed {
        let label_y = 14.0 + row as f64 * ROW + 10.0;
        let _ = write!(
            s,
            r#"<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="{3}" stroke-width="2" stroke-dasharray="{4}"/><text x="{5}" y="{6}" text-anchor="{7}" fill="{3}" font-weight="600">{8}</text>"#,
            fmt(x),
            fmt(label_y + 4.0),
            fmt(bottom),
            mk.style.color,
            mk.style.dash,
            fmt(if anchor_end { x - 4.0 } else { x + 4.0 }),
            fmt(label_y),
            if anchor_end { "end" } else { "start" },
            escape(&mk.label)
        );
    }
    s.push_str("</svg>");
    Some(s)
}
