//! Tiny SVG charts, written by hand: line charts over time and bar charts. No plotting
//! dependency; the output opens in any browser.

use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 360.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str, x_max: f64, y_max: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" font-size="14" text-anchor="middle">{}</text>
"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        escape(title)
    );
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = TOP + ph * (1.0 - f);
        let x = LEFT + pw * f;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(y_max * f)
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 16.0,
            fmt_num(x_max * f)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 8.0,
        escape(x_label),
        TOP + ph / 2.0,
        escape(y_label)
    );
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(out: &mut String, labels: &[String]) {
    for (k, label) in labels.iter().enumerate() {
        let y = TOP + 14.0 * k as f64 + 6.0;
        let x = W - RIGHT + 10.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            y - 8.0,
            COLORS[k % COLORS.len()],
            x + 14.0,
            y + 1.0,
            escape(label)
        );
    }
}

/// A line chart of `series` (x and y from 0).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let x_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(0.0, f64::max),
    );
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label, x_max, y_max);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for (k, s) in series.iter().enumerate() {
        let mut d = String::new();
        for (i, (x, y)) in s.points.iter().enumerate() {
            let px = LEFT + pw * x / x_max;
            let py = TOP + ph * (1.0 - y / y_max);
            let _ = write!(d, "{}{px:.1},{py:.1} ", if i == 0 { "M" } else { "L" });
        }
        let _ = writeln!(
            out,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
            d.trim_end(),
            COLORS[k % COLORS.len()]
        );
    }
    legend(
        &mut out,
        &series.iter().map(|s| s.label.clone()).collect::<Vec<_>>(),
    );
    out.push_str("</svg>\n");
    out
}

/// A grouped bar chart: one group of bars per category, one bar per series.
/// `values[series][category]`; `errors` optionally gives (low, high) whiskers.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    errors: Option<&[Vec<(f64, f64)>]>,
) -> String {
    let mut top = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max);
    if let Some(errs) = errors {
        top = errs.iter().flatten().map(|e| e.1).fold(top, f64::max);
    }
    let y_max = nice_max(top);
    let mut out = String::new();
    frame(&mut out, title, "", y_label, 1.0, y_max);
    // Blank the numeric x axis labels frame() wrote: categories label it instead.
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let _ = writeln!(
        out,
        r#"<rect x="{}" y="{:.1}" width="{:.1}" height="16" fill="white"/>"#,
        LEFT - 20.0,
        TOP + ph + 4.0,
        pw + 40.0
    );
    let n = categories.len().max(1) as f64;
    let slot = pw / n;
    let bar = (slot * 0.8) / series.len().max(1) as f64;
    for (c, cat) in categories.iter().enumerate() {
        let x0 = LEFT + slot * c as f64 + slot * 0.1;
        for (k, (_, values)) in series.iter().enumerate() {
            let v = values.get(c).copied().unwrap_or(0.0);
            let h = ph * v / y_max;
            let x = x0 + bar * k as f64;
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"#,
                TOP + ph - h,
                (bar - 1.0).max(0.5),
                COLORS[k % COLORS.len()]
            );
            if let Some(e) = errors.and_then(|e| e.get(k)).and_then(|e| e.get(c)) {
                let cx = x + bar / 2.0;
                let _ = writeln!(
                    out,
                    r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
                    TOP + ph * (1.0 - e.0 / y_max),
                    TOP + ph * (1.0 - e.1 / y_max)
                );
            }
        }
        if categories.len() <= 40 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                x0 + slot * 0.4,
                TOP + ph + 14.0,
                escape(cat)
            );
        }
    }
    legend(
        &mut out,
        &series.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_every_series() {
        let s = line_chart(
            "t",
            "x",
            "y",
            &[Series {
                label: "a<b".into(),
                points: vec![(0.0, 1.0), (2.0, 3.0)],
            }],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a&lt;b") && s.contains("<path"));
        let b = bar_chart(
            "t",
            "y",
            &["c1".into()],
            &[("s".into(), vec![2.0])],
            Some(&[vec![(1.0, 3.0)]]),
        );
        assert!(b.contains("<rect") && b.contains("c1"));
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
