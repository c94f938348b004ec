//! Inline SVG charts for the HTML report: line charts over time and a bar
//! histogram. Generated here, so the report is one file that opens offline
//! and renders without a script.

use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 250.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;

/// One series of a line chart.
pub struct Line<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub ys: Vec<f64>,
}

/// "Nice" tick values (1, 2, 5 × 10^k) covering `0..=max`.
pub fn ticks(max: f64, want: usize) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let n = (max / step).ceil() as usize;
    (0..=n.max(1)).map(|i| i as f64 * step).collect()
}

/// A tick label without float noise: `0.2`, `15`, `40k`.
fn label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.into() }
}

fn frame(o: &mut String, title: &str) {
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{title}"><text x="{LEFT}" y="16" class="title">{title}</text>"#
    );
}

fn y_axis(o: &mut String, ys: &[f64], top: f64, unit: &str) {
    for &v in ys {
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
        let _ = write!(
            o,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(v)
        );
    }
    let _ = write!(
        o,
        r#"<text x="12" y="{:.1}" class="unit" transform="rotate(-90 12 {:.1})" text-anchor="middle">{unit}</text>"#,
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
}

/// A line chart of `lines` against `xs` (seconds), y from 0.
pub fn lines(title: &str, unit: &str, xs: &[f64], lines: &[Line<'_>]) -> String {
    let mut o = String::new();
    frame(&mut o, title);
    let ymax = lines
        .iter()
        .flat_map(|l| l.ys.iter().copied())
        .fold(0.0f64, f64::max);
    let yt = ticks(ymax, 4);
    let top = *yt.last().expect("ticks are never empty");
    y_axis(&mut o, &yt, top, unit);
    // The x axis ends where the run did; ticks stop at or before it.
    let xtop = xs.last().copied().unwrap_or(1.0).max(1e-9);
    let mut xt = ticks(xtop, 8);
    xt.retain(|&x| x <= xtop * 1.0001);
    let px = |x: f64| LEFT + (W - LEFT - RIGHT) * x / xtop;
    let py = |y: f64| TOP + (H - TOP - BOTTOM) * (1.0 - y / top);
    for &x in &xt {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}s</text>"#,
            px(x),
            H - BOTTOM + 16.0,
            label(x)
        );
    }
    // Legends start right of the title (about 7 px a character at 13 px).
    let mut lx = LEFT + 7.5 * title.len() as f64 + 24.0;
    for l in lines {
        let pts: Vec<String> = xs
            .iter()
            .zip(&l.ys)
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.8" points="{}"/>"#,
            l.color,
            pts.join(" ")
        );
        if xs.len() == 1 {
            let _ = write!(
                o,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(xs[0]),
                py(l.ys[0]),
                l.color
            );
        }
        let _ = write!(
            o,
            r#"<rect x="{lx:.1}" y="8" width="12" height="4" fill="{}"/><text x="{:.1}" y="14" class="legend">{}</text>"#,
            l.color,
            lx + 16.0,
            l.label
        );
        lx += 30.0 + 7.0 * l.label.len() as f64;
    }
    o.push_str("</svg>");
    o
}

/// One bar of a histogram: `[lo, hi)` and its count.
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Bars on a logarithmic x axis (latencies span decades).
pub fn histogram(title: &str, x_unit: &str, bins: &[Bin]) -> String {
    let mut o = String::new();
    frame(&mut o, title);
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        o.push_str(r#"<text x="300" y="120" class="tick">no successful request</text></svg>"#);
        return o;
    };
    let cmax = bins.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    let yt = ticks(cmax, 4);
    let top = *yt.last().expect("ticks are never empty");
    y_axis(&mut o, &yt, top, "requests");
    let (l0, l1) = (first.lo.max(1e-9).log10(), last.hi.max(1e-9).log10());
    let span = (l1 - l0).max(1e-9);
    let px = |x: f64| LEFT + (W - LEFT - RIGHT) * (x.max(1e-9).log10() - l0) / span;
    let py = |y: f64| TOP + (H - TOP - BOTTOM) * (1.0 - y / top);
    for b in bins.iter().filter(|b| b.count > 0) {
        let (x0, x1) = (px(b.lo), px(b.hi));
        let y = py(b.count as f64);
        let _ = write!(
            o,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4e79a7"><title>{}–{} {x_unit}: {}</title></rect>"##,
            (x1 - x0 - 1.0).max(1.0),
            H - BOTTOM - y,
            label(b.lo),
            label(b.hi),
            b.count
        );
    }
    // Decade ticks (and 2, 5 between them when few decades show), plus
    // the fastest value when no tick is near it.
    let mut xt = Vec::new();
    let mut d = 10f64.powf(l0.floor());
    while d <= last.hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v >= first.lo && v <= last.hi && (m == 1.0 || span < 2.5) {
                xt.push(v);
            }
        }
        d *= 10.0;
    }
    if xt.first().is_none_or(|&v| px(v) - px(first.lo) > 48.0) {
        xt.insert(0, first.lo);
    }
    for v in xt {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}{x_unit}</text>"#,
            px(v),
            H - BOTTOM + 16.0,
            label(v)
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        assert_eq!(ticks(38.0, 4), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!(ticks(0.0, 4), vec![0.0, 1.0]);
        assert_eq!(label(40000.0), "40k");
        assert_eq!(label(0.2), "0.2");
        let svg = lines(
            "t",
            "req/s",
            &[0.25, 0.5],
            &[Line {
                label: "a",
                color: "red",
                ys: vec![1.0, 2.0],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<polyline"));
    }
}
