//! PNG plots for reports: long-tail (rank-frequency) curves, grouped bar charts with std error bars,
//! and line charts (training curves, metric-vs-skew sweeps).
//!
//! Rendering uses plotters' bitmap backend with the embedded DejaVu Sans font (`assets/`), so no
//! system font library is needed; the font is registered once as the `"sans-serif"` family.
//!
//! Every function renders into memory and returns the PNG file's bytes; it writes no file (the
//! caller does, through `longtail_data::atomic`). Empty input, non-finite values and drawing or
//! encoding failures are errors ([`EvalError::Empty`], [`EvalError::NonFinite`],
//! [`EvalError::Plot`], naming the plot by its title), never panics.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{EvalError, Result};

/// Font family every plot uses (the embedded DejaVu Sans, registered on first use).
pub const FONT_FAMILY: &str = "sans-serif";

/// One series of [`plot_group_bars`]: `(name, [(group, mean, std)])`.
pub type BarSeries = (String, Vec<(String, f64, f64)>);
/// One series of [`plot_curves`]: `(name, [(x, y)])`.
pub type CurveSeries = (String, Vec<(f64, f64)>);

/// Size in pixels of the long-tail plot.
pub const LONG_TAIL_SIZE: (u32, u32) = (800, 500);
/// Size in pixels of the bar and curve charts (wider: the legend sits in a column on the right).
pub const CHART_SIZE: (u32, u32) = (900, 500);

/// Most points drawn for one long-tail curve; longer rank lists are thinned log-uniformly in rank
/// (the curve is monotone, so nothing visible is lost).
const MAX_CURVE_POINTS: usize = 2000;
/// Curves with more points than this per series are drawn as lines without point markers.
const MAX_MARKED_POINTS: usize = 60;

const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

const TITLE_SIZE: u32 = 22;
const DESC_SIZE: u32 = 16;
const LABEL_SIZE: u32 = 14;
const LEGEND_SIZE: u32 = 14;

/// Tableau-10 colors: distinguishable and colorblind-friendlier than the primaries.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Color of series `i`: Tableau-10 first, then plotters' 99-color palette (no repeats before 109).
fn color(i: usize) -> RGBColor {
    match PALETTE.get(i) {
        Some(c) => *c,
        None => {
            let (r, g, b) = Palette99::pick(i - PALETTE.len()).rgb();
            RGBColor(r, g, b)
        }
    }
}

/// Registers the embedded font as [`FONT_FAMILY`] exactly once; later calls return the first result.
fn ensure_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded font DejaVuSans.ttf could not be parsed".to_string())
        })
        .clone()
}

fn plot_err(plot: &str, message: impl Into<String>) -> EvalError {
    EvalError::Plot {
        plot: plot.to_string(),
        message: message.into(),
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), String>;

/// Renders `draw` on a white `size` canvas in memory and returns it encoded as PNG. Errors are
/// [`EvalError::Plot`] naming `plot` (the plot's title).
fn render_png(
    plot: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Vec<u8>> {
    ensure_font().map_err(|m| plot_err(plot, m))?;
    let (w, h) = size;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    let rendered: DrawResult = (|| {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())
    })();
    rendered.map_err(|m| plot_err(plot, m))?;
    encode_png(&rgb, size).map_err(|m| plot_err(plot, m))
}

/// An RGB8 buffer of `size` pixels encoded as PNG (default compression and filter, as plotters'
/// own file output uses).
fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> std::result::Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(png)
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().color(&BLACK)
}

fn check_finite_f64(what: &str, index: usize, x: f64) -> Result<()> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(EvalError::NonFinite {
            what: what.to_string(),
            index,
        })
    }
}

/// Tick label for a count axis: integers below 10,000, then `12k`, `3.4M`, `1.2G`.
fn format_count(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        return format!("{}", v.round());
    };
    let s = if scaled.abs() >= 100.0 || (scaled - scaled.round()).abs() < 0.05 {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.1}")
    };
    format!("{s}{suffix}")
}

/// Tick labels for a linear value axis whose ticks are about `step` apart and whose values reach
/// `max_abs` in magnitude: just enough decimals to tell neighbouring ticks apart, no float noise
/// (`0.30000000000000004`), and large values in a common unit (`0.2M, 0.4M, …`) rather than long
/// digit strings; ticks finer than 1e-4 use scientific notation.
#[derive(Clone, Copy, Debug)]
struct AxisFormat {
    step: f64,
    unit: f64,
    suffix: &'static str,
}

impl AxisFormat {
    fn new(range: &Range<f64>, n_labels: usize) -> Self {
        let step = tick_step(range, n_labels);
        let max_abs = range.start.abs().max(range.end.abs());
        let (unit, suffix) = if max_abs >= 1e9 {
            (1e9, "G")
        } else if max_abs >= 1e6 {
            (1e6, "M")
        } else if max_abs >= 1e4 {
            (1e3, "k")
        } else {
            (1.0, "")
        };
        AxisFormat { step, unit, suffix }
    }

    fn format(&self, v: f64) -> String {
        // Zero, or float noise around a zero tick (1e-17), prints as a plain "0".
        if v.abs() < self.step * 1e-6 {
            return "0".to_string();
        }
        if self.step < 1e-4 {
            return format!("{v:.2e}");
        }
        // 1.0001: a step of 0.09999999 still means one decimal.
        let decimals = (-(1.0001 * self.step / self.unit).log10().floor()).clamp(0.0, 8.0) as usize;
        format!("{:.decimals$}{}", v / self.unit, self.suffix)
    }
}

/// Number of tick labels asked of plotters on linear axes (its default).
const N_LABELS: usize = 11;

/// Spacing of the tick labels plotters draws for `n` labels over `range`: asks plotters for the
/// very key points its mesh uses, so label precision always matches the ticks.
fn tick_step(range: &Range<f64>, n: usize) -> f64 {
    let coord: RangedCoordf64 = range.clone().into();
    let step = coord
        .key_points(n)
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    if step.is_finite() {
        step
    } else {
        // One tick or none: the range's own width decides.
        let w = (range.end - range.start).abs();
        if w > 0.0 && w.is_finite() {
            w
        } else {
            1.0
        }
    }
}

/// Width in pixels of the legend column for these names.
fn legend_width<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    let longest = names.map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    // DejaVu Sans at 14 px averages about 8 px per character; 44 px for the swatch and margins.
    (longest * 8 + 44).clamp(110, 320)
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Box,
    LineAndPoint,
}

/// Draws a legend (one colored swatch and name per series, top down) in `area`, a column right of
/// the chart. Rows start level with the top of the plotting area (`top` px).
fn draw_legend(area: &Area<'_>, names: &[&str], swatch: Swatch, top: i32) -> DrawResult {
    let row = 22;
    let (w, _) = area.dim_in_pixel();
    let max_chars = ((w.saturating_sub(44)) / 7).max(4) as usize;
    let (_, h) = area.dim_in_pixel();
    let fit = ((h as i32 - top - 8) / row).max(1) as usize;
    // With more series than rows, the last row says how many were left out.
    let shown = if names.len() > fit {
        fit - 1
    } else {
        names.len()
    };
    if shown < names.len() {
        let y = top + row * shown as i32 + row / 2;
        area.draw(&Text::new(
            format!("… and {} more", names.len() - shown),
            (6, y),
            font(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(|e| e.to_string())?;
    }
    for (i, name) in names.iter().enumerate().take(shown) {
        let y = top + row * i as i32 + row / 2;
        let c = color(i);
        match swatch {
            Swatch::Box => area
                .draw(&Rectangle::new([(6, y - 6), (20, y + 6)], c.filled()))
                .map_err(|e| e.to_string())?,
            Swatch::LineAndPoint => {
                area.draw(&PathElement::new(vec![(2, y), (24, y)], c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                area.draw(&Circle::new((13, y), 3, c.filled()))
                    .map_err(|e| e.to_string())?;
            }
        }
        let label: String = if name.chars().count() > max_chars {
            let mut s: String = name.chars().take(max_chars.saturating_sub(1)).collect();
            s.push('…');
            s
        } else {
            (*name).to_string()
        };
        area.draw(&Text::new(
            label,
            (30, y),
            font(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Pixel margin around charts and the top of the plotting area below the caption (for aligning
/// the legend column with the plot).
const MARGIN: u32 = 12;
const CAPTION_GAP: i32 = TITLE_SIZE as i32 + 2 * MARGIN as i32;

/// Rank-frequency ("long tail") plot on log-log axes: the entities (users, items) are sorted by
/// count, descending, and count is plotted against rank `1..=n`. Entities with a zero count are
/// skipped (they have no place on a log axis; the legend notes how many were skipped). Axis ranges
/// are the data's, widened by a factor of 1.25 on each side (`0.8 × min .. 1.25 × max`).
/// Very long rank lists are thinned log-uniformly to at most 2000 drawn points. Returns the PNG
/// file's bytes.
///
/// Errors: [`EvalError::Empty`] if `counts` is empty or all zero; [`EvalError::Plot`] (naming the
/// plot by `title`) if drawing or encoding fails.
pub fn plot_long_tail(
    counts: &[u64],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Vec<u8>> {
    let mut sorted: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    if sorted.is_empty() {
        return Err(EvalError::Empty(format!(
            "long-tail plot {title:?}: no non-zero counts (of {})",
            counts.len()
        )));
    }
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let n = sorted.len();
    let skipped = counts.len() - n;
    let max = sorted[0] as f64;
    let min = sorted[n - 1] as f64;

    // Ranks to draw: all if few, else log-uniformly spaced (always including 1 and n).
    let ranks: Vec<usize> = if n <= MAX_CURVE_POINTS {
        (1..=n).collect()
    } else {
        let ln_n = (n as f64).ln();
        let mut r: Vec<usize> = (0..MAX_CURVE_POINTS)
            .map(|i| {
                let t = i as f64 / (MAX_CURVE_POINTS - 1) as f64;
                ((t * ln_n).exp().round() as usize).clamp(1, n)
            })
            .collect();
        r.dedup();
        r
    };
    let points: Vec<(f64, f64)> = ranks
        .iter()
        .map(|&r| (r as f64, sorted[r - 1] as f64))
        .collect();

    let x_range = 0.8..(n as f64 * 1.25).max(2.0);
    let y_range = (min * 0.8)..(max * 1.25).max(min * 2.0);
    let mut label = format!("n = {}", format_thousands(n));
    if skipped > 0 {
        label.push_str(&format!(" ({} zero skipped)", format_thousands(skipped)));
    }
    let mark_points = points.len() <= MAX_MARKED_POINTS;

    render_png(title, LONG_TAIL_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_SIZE))
            .margin(MARGIN)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .x_label_formatter(&|v| format_count(*v))
            .y_label_formatter(&|v| format_count(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(|e| e.to_string())?;
        let c = color(0);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if mark_points {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, c.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(LEGEND_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| e.to_string())
    })
}

/// `1234567` → `1,234,567`.
fn format_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The value axis of a bar chart: `(range, base)` where bars rise (or hang) from `base`.
///
/// With `lo = min(mean - std)`, `hi = max(mean + std)` over all bars and `pad = 10%` of `hi - lo`
/// (at least 5% of `max(|lo|, |hi|)`, so a flat chart still gets a visible range):
/// - all values `>= 0` and `lo <= hi / 2` (zero is "close"): `0 ..= hi + pad`, bars from 0;
/// - all values `<= 0` and `hi >= lo / 2`: mirror image, `lo - pad ..= 0`;
/// - otherwise (e.g. AUCs in 0.55..0.85): zoom to `lo - pad ..= hi + pad`, never crossing zero
///   when the data does not, and the bars rise from the bottom of the axis (their heights are
///   relative then; read values off the axis);
/// - data on both sides of zero: `lo - pad ..= hi + pad`, bars from 0.
pub fn bar_value_range(lo: f64, hi: f64) -> (Range<f64>, f64) {
    let scale = lo.abs().max(hi.abs());
    let span = (hi - lo).max(0.05 * scale).max(1e-9);
    let pad = 0.1 * span;
    if lo >= 0.0 && lo <= 0.5 * hi {
        (0.0..hi + pad, 0.0)
    } else if hi <= 0.0 && hi >= 0.5 * lo {
        (lo - pad..0.0, 0.0)
    } else if lo >= 0.0 {
        let start = (lo - pad).max(0.0);
        (start..hi + pad, start)
    } else if hi <= 0.0 {
        let end = (hi + pad).min(0.0);
        (lo - pad..end, end)
    } else {
        (lo - pad..hi + pad, 0.0)
    }
}

/// Grouped bar chart: one cluster per group on the x axis (in order of first appearance across the
/// series, e.g. `all, tail, body, head`), one colored bar per series (model) within each cluster,
/// with a black `mean ± std` error bar, and a legend of series names in a column on the right.
/// Each series is `(name, [(group, mean, std)])`; a series may lack some groups (no bar there).
/// The y range follows [`bar_value_range`] (e.g. AUCs of 0.6..0.8 get an axis of about
/// 0.58..0.82, not 0..1). Returns the PNG file's bytes.
///
/// Errors: [`EvalError::Empty`] if there are no series or no bars; [`EvalError::NonFinite`] for a
/// NaN/infinite mean or std; [`EvalError::InvalidArgument`] for a negative std or a group repeated
/// within a series; [`EvalError::Plot`] (naming the plot by `title`) if drawing or encoding fails.
pub fn plot_group_bars(series: &[BarSeries], title: &str, y_label: &str) -> Result<Vec<u8>> {
    if series.iter().all(|(_, bars)| bars.is_empty()) {
        return Err(EvalError::Empty(format!(
            "bar chart {title:?}: no bars ({} series)",
            series.len()
        )));
    }
    let mut groups: Vec<&str> = Vec::new();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (name, bars) in series {
        for (j, (group, mean, std)) in bars.iter().enumerate() {
            check_finite_f64(&format!("bar mean of series {name:?}"), j, *mean)?;
            check_finite_f64(&format!("bar std of series {name:?}"), j, *std)?;
            if *std < 0.0 {
                return Err(EvalError::InvalidArgument(format!(
                    "bar chart {title:?}: negative std {std} for series {name:?}, group {group:?}"
                )));
            }
            if bars[..j].iter().any(|(g, _, _)| g == group) {
                return Err(EvalError::InvalidArgument(format!(
                    "bar chart {title:?}: group {group:?} appears twice in series {name:?}"
                )));
            }
            if !groups.contains(&group.as_str()) {
                groups.push(group);
            }
            lo = lo.min(mean - std);
            hi = hi.max(mean + std);
        }
    }
    let (y_range, base) = bar_value_range(lo, hi);
    let y_fmt = AxisFormat::new(&y_range, N_LABELS);
    let n_groups = groups.len();
    let n_series = series.len();
    // Group i occupies x in [i, i + 1]; its bars fill the middle 80%.
    let slot = 0.8 / n_series as f64;
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let legend_w = legend_width(names.iter().copied());
    let (w, h) = CHART_SIZE;

    render_png(title, (w, h), |root| {
        let (left, right) = root.split_horizontally(w - legend_w);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, font(TITLE_SIZE))
            .margin(MARGIN)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n_groups as f64, y_range.clone())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .x_labels(0)
            .y_labels(N_LABELS)
            .y_label_formatter(&|v| y_fmt.format(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(|e| e.to_string())?;

        // Group names centered under their clusters (plotters' own x labels sit at round
        // numbers, not at cluster centers).
        for (i, group) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y_range.start));
            left.draw(&Text::new(
                group.to_string(),
                (px, py + 8),
                font(DESC_SIZE).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|e| e.to_string())?;
        }
        // Baseline (only visible when it is inside the plot, i.e. mixed signs or zero-based).
        if y_range.start < 0.0 && y_range.end > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, 0.0), (n_groups as f64, 0.0)],
                    BLACK.stroke_width(1),
                )))
                .map_err(|e| e.to_string())?;
        }
        for (s, (_, bars)) in series.iter().enumerate() {
            let c = color(s);
            for (group, mean, std) in bars {
                let g = groups.iter().position(|x| x == group).unwrap_or(0) as f64;
                let x0 = g + 0.1 + slot * s as f64;
                let x1 = x0 + slot;
                let (y0, y1) = (base.min(*mean), base.max(*mean));
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0 + 0.06 * slot, y0), (x1 - 0.06 * slot, y1)],
                        c.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                if *std > 0.0 {
                    let xm = (x0 + x1) / 2.0;
                    let cap = slot * 0.18;
                    let (lo_e, hi_e) = (mean - std, mean + std);
                    let bar_style = BLACK.stroke_width(2);
                    for line in [
                        vec![(xm, lo_e), (xm, hi_e)],
                        vec![(xm - cap, lo_e), (xm + cap, lo_e)],
                        vec![(xm - cap, hi_e), (xm + cap, hi_e)],
                    ] {
                        chart
                            .draw_series(std::iter::once(PathElement::new(line, bar_style)))
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        draw_legend(&right, &names, Swatch::Box, CAPTION_GAP)
    })
}

/// Line chart with point markers (markers are dropped for series longer than 60 points) and a
/// legend of series names in a column on the right; e.g. training loss per epoch, or a metric
/// against a skew parameter. Each series is `(name, [(x, y)])`, drawn in the given order. Axis
/// ranges are the data's extent padded by 3% (x) and 8% (y) on each side; a zero-width extent is
/// widened to `±5%` of its value (or `±0.5` at zero). Axes never force zero in. Returns the PNG
/// file's bytes.
///
/// Errors: [`EvalError::Empty`] if there are no points at all; [`EvalError::NonFinite`] for a
/// NaN/infinite coordinate; [`EvalError::Plot`] (naming the plot by `title`) if drawing or
/// encoding fails. A series without points still gets a legend entry.
pub fn plot_curves(
    series: &[CurveSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Vec<u8>> {
    if series.iter().all(|(_, pts)| pts.is_empty()) {
        return Err(EvalError::Empty(format!(
            "curve chart {title:?}: no points ({} series)",
            series.len()
        )));
    }
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (name, pts) in series {
        for (j, &(x, y)) in pts.iter().enumerate() {
            check_finite_f64(&format!("x of series {name:?}"), j, x)?;
            check_finite_f64(&format!("y of series {name:?}"), j, y)?;
            x_lo = x_lo.min(x);
            x_hi = x_hi.max(x);
            y_lo = y_lo.min(y);
            y_hi = y_hi.max(y);
        }
    }
    let x_range = padded_range(x_lo, x_hi, 0.03);
    let y_range = padded_range(y_lo, y_hi, 0.08);
    let x_fmt = AxisFormat::new(&x_range, N_LABELS);
    let y_fmt = AxisFormat::new(&y_range, N_LABELS);
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let legend_w = legend_width(names.iter().copied());
    let (w, h) = CHART_SIZE;

    render_png(title, (w, h), |root| {
        let (left, right) = root.split_horizontally(w - legend_w);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, font(TITLE_SIZE))
            .margin(MARGIN)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .x_labels(N_LABELS)
            .x_label_formatter(&|v| x_fmt.format(*v))
            .y_labels(N_LABELS)
            .y_label_formatter(&|v| y_fmt.format(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(|e| e.to_string())?;
        for (s, (_, pts)) in series.iter().enumerate() {
            if pts.is_empty() {
                continue;
            }
            let c = color(s);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if pts.len() <= MAX_MARKED_POINTS {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        draw_legend(&right, &names, Swatch::LineAndPoint, CAPTION_GAP)
    })
}

/// `lo..hi` widened by `frac` of its width on each side; a zero-width range is widened to ±5% of
/// its value (±0.5 at zero) first.
fn padded_range(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let d = if lo == 0.0 { 0.5 } else { 0.05 * lo.abs() };
        (lo - d, hi + d)
    };
    let pad = frac * (hi - lo);
    (lo - pad)..(hi + pad)
}

#[cfg(test)]
mod tests;
