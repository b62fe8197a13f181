//! A dependency-free SVG plot: Mpps and cycles per packet against
//! concurrent sessions (log scale), one line per scenario family, testpmd's
//! figure as a dashed reference line.

use std::fmt::Write;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (x, y) points; x > 0 (log axis).
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line.
#[derive(Clone, Debug)]
pub struct Reference {
    pub label: String,
    pub y: f64,
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const W: f64 = 460.0;
const H: f64 = 340.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 34.0;
const MB: f64 = 92.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A "nice" upper bound for an axis holding values up to `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= max * 1.05 {
            return m * p;
        }
    }
    10.0 * p
}

fn label_count(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{}M", x / 1e6),
        x if x >= 1e3 => format!("{}k", x / 1e3),
        x => format!("{x}"),
    }
}

/// One chart as an SVG group at horizontal offset `dx`.
fn chart(out: &mut String, dx: f64, title: &str, y_label: &str, series: &[Series], refs: &[Reference]) {
    let xs: Vec<f64> =
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|x| *x > 0.0).collect();
    let (x0, x1) = match (xs.iter().cloned().reduce(f64::min), xs.iter().cloned().reduce(f64::max)) {
        (Some(a), Some(b)) => {
            (10f64.powf(a.log10().floor()), 10f64.powf(b.log10().ceil().max(a.log10().floor() + 1.0)))
        }
        _ => (1e3, 1e7),
    };
    let ymax_data = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(refs.iter().map(|r| r.y))
        .fold(0.0, f64::max);
    let y1 = nice_max(ymax_data);
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let px = |x: f64| dx + ML + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()) * pw;
    let py = |y: f64| MT + ph - y / y1 * ph;

    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"#,
        dx + ML + pw / 2.0,
        esc(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        dx + ML
    );
    // Y grid and labels.
    for i in 0..=5 {
        let y = y1 * i as f64 / 5.0;
        let yy = py(y);
        let _ = writeln!(
            out,
            r##"<line x1="{}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/>"##,
            dx + ML,
            dx + ML + pw
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            dx + ML - 6.0,
            yy + 4.0,
            fmt_y(y)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        dx + 16.0,
        MT + ph / 2.0,
        dx + 16.0,
        MT + ph / 2.0,
        esc(y_label)
    );
    // X decades.
    let mut x = x0;
    while x <= x1 * 1.0001 {
        let xx = px(x);
        let _ = writeln!(out, r##"<line x1="{xx}" y1="{MT}" x2="{xx}" y2="{}" stroke="#ddd"/>"##, MT + ph);
        let _ = writeln!(
            out,
            r#"<text x="{xx}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            MT + ph + 16.0,
            label_count(x)
        );
        x *= 10.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">concurrent sessions (log scale)</text>"#,
        dx + ML + pw / 2.0,
        MT + ph + 34.0
    );
    // Reference lines, then series.
    let mut legend = vec![];
    for (i, r) in refs.iter().enumerate() {
        let yy = py(r.y);
        let c = "#777";
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{yy}" x2="{}" y2="{yy}" stroke="{c}" stroke-dasharray="6 4" stroke-width="1.5"/>"#,
            dx + ML,
            dx + ML + pw
        );
        legend.push((format!("{} ({})", r.label, fmt_y(r.y)), c.to_string(), true, i));
    }
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> =
            s.points.iter().filter(|p| p.0 > 0.0).map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1))).collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        for p in s.points.iter().filter(|p| p.0 > 0.0) {
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#, px(p.0), py(p.1));
        }
        legend.push((s.label.clone(), c.to_string(), false, i));
    }
    for (k, (label, c, dashed, _)) in legend.iter().enumerate() {
        let ly = MT + ph + 52.0 + (k / 2) as f64 * 16.0;
        let lx = dx + ML + (k % 2) as f64 * pw / 2.0;
        let dash = if *dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{c}" stroke-width="2"{dash}/>"#,
            ly - 4.0,
            lx + 22.0,
            ly - 4.0
        );
        let _ = writeln!(out, r#"<text x="{}" y="{ly}" font-size="11">{}</text>"#, lx + 28.0, esc(label));
    }
}

fn fmt_y(y: f64) -> String {
    if y >= 100.0 || y == 0.0 {
        format!("{y:.0}")
    } else if y >= 10.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.2}")
    }
}

/// Two charts side by side: Mpps (left) and cycles per packet (right).
pub fn svg(
    mpps: &[Series],
    mpps_refs: &[Reference],
    cycles: &[Series],
    cycles_refs: &[Reference],
    caption: &str,
) -> String {
    let mut out = String::new();
    let total_w = 2.0 * W;
    let total_h = H + 22.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" viewBox="0 0 {total_w} {total_h}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    chart(&mut out, 0.0, "Forwarded Mpps (both directions)", "Mpps", mpps, mpps_refs);
    chart(&mut out, W, "gatewayd TSC cycles per packet", "cycles / packet", cycles, cycles_refs);
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
        W,
        total_h - 6.0,
        esc(caption)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_is_well_formed_and_holds_every_point() {
        let s = vec![
            Series {
                label: "FULLNAT UDP".into(),
                points: vec![(1e3, 4.0), (1e5, 3.5), (1e6, 3.0), (1e7, 2.0)],
            },
            Series { label: "FULLNAT TCP <ack>".into(), points: vec![(1e3, 3.9)] },
        ];
        let r = vec![Reference { label: "testpmd".into(), y: 6.0 }];
        let svg = svg(&s, &r, &s, &[], "caption & more");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 10);
        assert!(svg.contains("TCP &lt;ack&gt;") && svg.contains("caption &amp; more"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(nice_max(9.3), 10.0);
        assert_eq!(nice_max(0.0), 1.0);
        // No data at all still renders.
        assert!(svg_empty_ok());
    }

    fn svg_empty_ok() -> bool {
        let s = svg(&[], &[], &[], &[], "");
        !s.contains("NaN")
    }
}
