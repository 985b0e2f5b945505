//! The report's four plots, drawn with plotters' SVG backend into strings that the page
//! inlines.
//!
//! Text: plotters is built without its `ttf` and `ab_glyph` features, so it uses its "naive"
//! font, which only estimates the size of a label (0.7 em per character) to lay out the label
//! areas. The SVG backend writes every label as an SVG `<text>` element with
//! `font-family="sans-serif"`, and the browser sets it in whatever sans-serif font the system
//! has (DejaVu Sans comes with Debian's `chromium`). So no font is bundled or read at build
//! time; the label areas are sized generously below to absorb the estimate's error.

use std::error::Error;

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::results::Window;
use super::timeline::{Kind, Timeline};
use super::PairLag;

/// The fault windows' shade, opaque so it can be recognised in a screenshot.
pub(crate) const SHADE: RGBColor = RGBColor(255, 221, 170);
/// Acknowledged calls in the latency scatter.
const OK: RGBColor = RGBColor(31, 119, 180);
/// Refused calls.
const FAILED: RGBColor = RGBColor(214, 39, 40);
/// Calls without an answer.
const UNKNOWN: RGBColor = RGBColor(255, 127, 14);
/// A second without calls in the availability strip.
const NO_CALLS: RGBColor = RGBColor(220, 220, 220);

/// Colours of Regions and Region pairs, in order (Tableau 10 without red and orange, which
/// mean failures here).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

/// Width of every plot, in CSS pixels.
pub(crate) const WIDTH: u32 = 1100;
const FONT: (&str, u32) = ("sans-serif", 15);
const CAPTION: (&str, u32) = ("sans-serif", 18);

type Drawn = Result<(), Box<dyn Error>>;

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn draw(
    size: (u32, u32),
    f: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        f(root.clone()).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Shades the fault windows over the whole height of a chart (`low`..`high` on y).
fn shade<'a, Y: Clone + 'a>(
    windows: &'a [Window],
    low: Y,
    high: Y,
) -> impl Iterator<Item = Rectangle<(f64, Y)>> + 'a {
    windows.iter().map(move |w| {
        Rectangle::new(
            [(w.start_s, low.clone()), (w.end_s, high.clone())],
            SHADE.filled(),
        )
    })
}

/// A chart on `area` with the report's caption, margins and label areas (`y_labels` wide).
fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: impl AsRef<str>,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(area);
    b.caption(caption, CAPTION)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(y_labels);
    b
}

/// Draws the series' legend at `at`, in the report's style.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    at: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(at)
        .label_font(FONT)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Latency over time, one panel per Region: every call (subsampled on long runs) by when it
/// was due, coloured by outcome, with the per-second p99; log-scale y; faults shaded.
pub(crate) fn latency(t: &Timeline) -> Result<String, String> {
    let panel = 260;
    let n = t.regions.len().max(1);
    draw((WIDTH, panel * n as u32), |root| {
        let areas = root.split_evenly((n, 1));
        for (area, s) in areas.iter().zip(&t.regions) {
            let top = s.points.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.5;
            let low =
                (s.points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) / 1.5).clamp(0.01, 1.0);
            let mut chart = frame(
                area,
                format!("{}: latency of each call (ms, log scale)", s.region),
                70,
            )
            .build_cartesian_2d(0.0..t.end_s, (low..top).log_scale())?;
            chart.draw_series(shade(&t.windows, low, top))?;
            chart
                .configure_mesh()
                .x_desc("seconds since the workload started")
                .y_desc("ms")
                .label_style(FONT)
                .draw()?;
            for (kind, col, label) in [
                (Kind::Ok, OK, "ok"),
                (Kind::Failed, FAILED, "failed"),
                (Kind::Unknown, UNKNOWN, "unknown"),
            ] {
                let style = col.mix(0.55).filled();
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .filter(|p| p.2 == kind)
                            .map(|p| Circle::new((p.0, p.1.max(low)), 2, style)),
                    )?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
            }
            let p99: Vec<(f64, f64)> = s
                .p99_ms
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i as f64 + 0.5, v.max(low))))
                .collect();
            chart
                .draw_series(LineSeries::new(p99, BLACK.stroke_width(2)))?
                .label("p99 per second")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
                });
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}

/// Throughput over time: acknowledged calls per second per Region (solid) and failed or
/// unanswered calls per second (dashed, same colour); faults shaded.
pub(crate) fn throughput(t: &Timeline) -> Result<String, String> {
    draw((WIDTH, 380), |root| {
        let top = t
            .regions
            .iter()
            .flat_map(|s| s.ok_per_s.iter().chain(&s.errors_per_s))
            .copied()
            .max()
            .unwrap_or(0)
            .max(1) as f64
            * 1.15;
        let mut chart = frame(&root, "Throughput: calls per second by when they ended", 70)
            .build_cartesian_2d(0.0..t.end_s, 0.0..top)?;
        chart.draw_series(shade(&t.windows, 0.0, top))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the workload started")
            .y_desc("calls/s")
            .label_style(FONT)
            .draw()?;
        for (i, s) in t.regions.iter().enumerate() {
            let c = color(i);
            let ok = s
                .ok_per_s
                .iter()
                .enumerate()
                .map(|(x, v)| (x as f64 + 0.5, *v as f64));
            chart
                .draw_series(LineSeries::new(ok, c.stroke_width(2)))?
                .label(format!("{} ok/s", s.region))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            let err = s
                .errors_per_s
                .iter()
                .enumerate()
                .map(|(x, v)| (x as f64 + 0.5, *v as f64));
            chart
                .draw_series(DashedLineSeries::new(err, 6, 4, c.stroke_width(2)))?
                .label(format!("{} errors/s", s.region))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Most points one pair's CDF line is drawn with.
const CDF_POINTS: usize = 400;

/// The sync-lag CDF per Region pair (log-scale x); `None` when no pair has a sample.
pub(crate) fn sync_lag_cdf(pairs: &[PairLag]) -> Option<Result<String, String>> {
    let with: Vec<(usize, &PairLag)> = pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.samples_us.is_empty())
        .collect();
    if with.is_empty() {
        return None;
    }
    let ms = |us: u64| (us as f64 / 1000.0).max(0.01);
    let all = || with.iter().flat_map(|(_, p)| p.samples_us.iter().copied());
    let low = all().map(ms).fold(f64::INFINITY, f64::min) / 1.5;
    let high = all().map(ms).fold(0.0_f64, f64::max) * 1.5;
    Some(draw((WIDTH, 380), |root| {
        let mut chart = frame(
            &root,
            "Sync lag per Region pair: share of changes applied within x ms",
            70,
        )
        .build_cartesian_2d((low..high).log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("lag from commit in the source to apply in the destination (ms, log scale)")
            .y_desc("share of changes")
            .label_style(FONT)
            .draw()?;
        for (i, p) in with {
            let mut v = p.samples_us.clone();
            v.sort_unstable();
            let n = v.len();
            let step = n.div_ceil(CDF_POINTS).max(1);
            let mut line: Vec<(f64, f64)> = (0..n)
                .step_by(step)
                .map(|k| (ms(v[k]), (k + 1) as f64 / n as f64))
                .collect();
            line.push((ms(v[n - 1]), 1.0));
            let c = color(i);
            chart
                .draw_series(LineSeries::new(line, c.stroke_width(2)))?
                .label(format!("{} → {} ({} changes)", p.source, p.destination, n))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }))
}

/// The colour of a second in the availability strip: red (no call acknowledged) through
/// yellow to green (every call acknowledged), grey without calls.
pub(crate) fn availability_color(share: Option<f64>) -> RGBColor {
    match share {
        None => NO_CALLS,
        Some(s) => {
            let s = s.clamp(0.0, 1.0);
            // red (214, 39, 40) → yellow (240, 200, 40) → green (44, 160, 44)
            let lerp = |a: f64, b: f64, t: f64| (a + (b - a) * t).round() as u8;
            if s < 0.5 {
                let t = s * 2.0;
                RGBColor(lerp(214.0, 240.0, t), lerp(39.0, 200.0, t), 40)
            } else {
                let t = (s - 0.5) * 2.0;
                RGBColor(
                    lerp(240.0, 44.0, t),
                    lerp(200.0, 160.0, t),
                    lerp(40.0, 44.0, t),
                )
            }
        }
    }
}

/// Availability: per Region a strip of seconds coloured by the share of calls due that second
/// that were acknowledged; the top row shows when faults were active.
pub(crate) fn availability(t: &Timeline) -> Result<String, String> {
    let rows = t.regions.len() as u32 + 1;
    draw((WIDTH, 90 + 46 * rows), |root| {
        let names: Vec<String> = t.regions.iter().map(|s| s.region.clone()).collect();
        // Row 0 (bottom) is the last Region; the top row is the faults.
        let label = move |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(r) if *r + 1 == rows => "faults".to_string(),
            SegmentValue::CenterOf(r) => names
                .get(names.len().saturating_sub(1 + *r as usize))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        let mut chart = frame(
            &root,
            "Availability: share of calls acknowledged, per second",
            110,
        )
        // An integer range is inclusive here: `0..rows - 1` makes `rows` segments.
        .build_cartesian_2d(0.0..t.end_s, (0u32..rows - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("seconds since the workload started (red: none acknowledged, green: all, grey: no calls)")
            .y_labels(rows as usize + 1)
            .y_label_formatter(&label)
            .label_style(FONT)
            .draw()?;
        let row = |r: u32| {
            let top = if r + 1 == rows {
                SegmentValue::Last
            } else {
                SegmentValue::Exact(r + 1)
            };
            (SegmentValue::Exact(r), top)
        };
        let (f0, f1) = row(rows - 1);
        chart.draw_series(shade(&t.windows, f0, f1))?;
        for (i, s) in t.regions.iter().enumerate() {
            let (y0, y1) = row(rows - 2 - i as u32);
            chart.draw_series(s.success.iter().enumerate().map(|(x, v)| {
                let x = x as f64;
                Rectangle::new(
                    [(x, y0.clone()), ((x + 1.0).min(t.end_s), y1.clone())],
                    availability_color(*v).filled(),
                )
            }))?;
        }
        Ok(())
    })
}
