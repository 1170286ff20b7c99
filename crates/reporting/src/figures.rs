//! The report's figures, each as PNG and SVG, titled, with labelled axes and a legend, their text in the bundled
//! font (`font`).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use ssinfogan_core::metric;

use crate::aggregate::{Curve, Tables};
use crate::error::ReportError;
use crate::font::{ensure_font, FONT};
use crate::grids::write_png;
use crate::inputs::ReportInputs;
use crate::written::{write_file, Written};

pub(crate) const SIZE: (u32, u32) = (960, 600);

/// Ten distinguishable colours (matplotlib's tab10), in legend order.
pub(crate) const PALETTE: [RGBColor; 10] = [
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

/// Draws with `draw` into `<stem>.png` and `<stem>.svg`, each written atomically.
fn render<F, G>(stem: &Path, size: (u32, u32), png: F, svg: G, written: &mut Written) -> Result<(), ReportError>
where
    F: FnOnce(DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
    G: FnOnce(DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
{
    ensure_font()?;
    let png_path = stem.with_extension("png");
    let mut pixels = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Plot { path: png_path.clone(), message: e.to_string() })?;
        png(root.clone()).map_err(|message| ReportError::Plot { path: png_path.clone(), message })?;
        root.present().map_err(|e| ReportError::Plot { path: png_path.clone(), message: e.to_string() })?;
    }
    write_png(&png_path, size.0, size.1, pixels, written)?;

    let svg_path = stem.with_extension("svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Plot { path: svg_path.clone(), message: e.to_string() })?;
        svg(root.clone()).map_err(|message| ReportError::Plot { path: svg_path.clone(), message })?;
        root.present().map_err(|e| ReportError::Plot { path: svg_path.clone(), message: e.to_string() })?;
    }
    write_file(&svg_path, text.as_bytes(), written)
}

macro_rules! both {
    ($stem:expr, $size:expr, $written:expr, |$root:ident| $body:expr) => {
        render($stem, $size, |$root| $body, |$root| $body, $written)
    };
}

/// Every figure of the report into `figures/`.
pub fn write_all<'a>(tables: &'a Tables, inputs: &ReportInputs, written: &mut Written) -> Result<(), ReportError> {
    let dir = inputs.results_dir.join("figures");
    let line_figures = [
        (metric::C_ERR_HUNGARIAN, "convergence", "C_err (Hungarian mapping) during training", "C_err"),
        (
            metric::C_ERR_IDENTITY,
            "c-err-identity",
            "C_err with code k read as class k, during training",
            "C_err (identity)",
        ),
        (
            metric::MI_CODE_CLASS_NORMALISED,
            "mutual-information",
            "I(code; class seen by C) / ln K, during training",
            "normalised mutual information",
        ),
        (metric::FRECHET_DISTANCE, "frechet-distance", "Fréchet distance to the real test split", "Fréchet distance"),
    ];
    // Unfinished runs (`report --include-running`) are drawn dashed beside the completed runs' curves.
    let of = |curves: &'a BTreeMap<String, Vec<Curve>>, metric: &str| -> &'a [Curve] {
        curves.get(metric).map(Vec::as_slice).unwrap_or(&[])
    };
    for (metric, file, title, y_label) in line_figures {
        let (curves, dashed) = (of(&tables.curves, metric), of(&tables.running, metric));
        if curves.is_empty() && dashed.is_empty() {
            continue;
        }
        both!(&dir.join(file), SIZE, written, |root| line_chart(&root, curves, dashed, title, "iteration", y_label))?;
    }
    let losses: Vec<(&str, &[Curve], &[Curve])> =
        [metric::D_REAL, metric::D_FAKE, metric::G_ADV, metric::Q_SS_FAKE, metric::Q_US, metric::Q_SS_REAL]
            .into_iter()
            .map(|m| (m, of(&tables.curves, m), of(&tables.running, m)))
            .filter(|(_, curves, dashed)| !curves.is_empty() || !dashed.is_empty())
            .collect();
    if !losses.is_empty() {
        both!(&dir.join("losses"), (1440, 840), written, |root| loss_panels(&root, &losses))?;
    }
    if tables.rows.iter().any(|r| r.n_labelled > 0 && r.finals.contains_key(metric::C_ERR_IDENTITY)) {
        both!(&dir.join("c-err-vs-labels"), SIZE, written, |root| c_err_vs_labels(&root, tables))?;
    }
    for group in &inputs.morphometry {
        let stem = dir.join(format!("morphometry-{}-n{}", group.variant, group.n_labelled));
        both!(&stem, (1440, 840), written, |root| morphometry_panels(&root, group))?;
    }
    Ok(())
}

/// A group's first seed: each morphometric along each continuous code's sweep, the mean over the lines with a
/// band of one standard deviation, one panel per morphometric, one curve per code.
fn morphometry_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    group: &crate::morphometry::GroupMorphometry,
) -> Result<(), String> {
    let (Some(seed), Some(record)) = (group.seeds.first(), group.records.first()) else { return Ok(()) };
    let title = format!("Morphometry along each code's sweep: {}, seed {seed} (mean ± 1 sd over lines)", group.group);
    let titled = root.titled(&title, (FONT, 24)).map_err(|e| e.to_string())?;
    let x: Vec<f64> = record.sweep_values.iter().map(|&v| f64::from(v)).collect();
    let x_range = x.first().copied().unwrap_or(-1.0)..x.last().copied().unwrap_or(1.0);
    let names: Vec<&str> =
        record.codes.first().map(|c| c.morphometrics.iter().map(|m| m.name.as_str()).collect()).unwrap_or_default();
    for (name, panel) in names.iter().zip(titled.split_evenly((2, 3)).iter()) {
        let curves: Vec<Curve> = record
            .codes
            .iter()
            .filter_map(|code| {
                let m = code.morphometrics.iter().find(|m| m.name == *name)?;
                Some(Curve {
                    group: format!("{} (ρ = {:.2})", code.code, m.spearman_mean),
                    iteration: x.clone(),
                    mean: m.mean_along_sweep.clone(),
                    low: m.mean_along_sweep.iter().zip(&m.sd_along_sweep).map(|(a, s)| a - s).collect(),
                    high: m.mean_along_sweep.iter().zip(&m.sd_along_sweep).map(|(a, s)| a + s).collect(),
                })
            })
            .collect();
        let unit = if *name == "slant" {
            "radians"
        } else if *name == "area" {
            "pixels²"
        } else {
            "pixels"
        };
        chart_of(panel, &curves, &[], name, ("code value", x_range.clone(), 1), unit, false)?;
    }
    Ok(())
}

fn y_range<'a>(values: impl Iterator<Item = &'a f64>) -> std::ops::Range<f64> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values.filter(|v| v.is_finite()) {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let pad = if high > low { 0.05 * (high - low) } else { 0.5 };
    (low - pad)..(high + pad)
}

/// Curves over iterations, each with its seed spread (min to max) as a translucent band.
fn line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve],
    dashed: &[Curve],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<(), String> {
    let x_max = curves.iter().chain(dashed).flat_map(|c| c.iteration.iter()).fold(1.0f64, |a, &b| a.max(b));
    chart_of(root, curves, dashed, title, (x_label, 0f64..x_max, 0), y_label, true)
}

/// Curves with their bands over the x range `x.1`, its ticks with `x.2` decimals; `dashed` ones (unfinished
/// runs) as dashed lines in the colour of their group's curve.
fn chart_of<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve],
    dashed: &[Curve],
    title: &str,
    x: (&str, std::ops::Range<f64>, usize),
    y_label: &str,
    fine_mesh: bool,
) -> Result<(), String> {
    let (x_label, x_range, decimals) = x;
    let y = y_range(curves.iter().chain(dashed).flat_map(|c| c.low.iter().chain(c.high.iter()).chain(c.mean.iter())));
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y)
        .map_err(|e| e.to_string())?;
    let x_format = |x: &f64| format!("{x:.decimals$}");
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_format)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16));
    if !fine_mesh {
        // The minor grid lines are most of a PNG's bytes (their antialiased pixels do not compress), and the page
        // inlines every figure.
        mesh.light_line_style(TRANSPARENT);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    for (i, curve) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if curve.low.iter().zip(&curve.high).any(|(l, h)| h > l) {
            let mut band: Vec<(f64, f64)> = curve.iteration.iter().copied().zip(curve.high.iter().copied()).collect();
            band.extend(curve.iteration.iter().copied().zip(curve.low.iter().copied()).rev());
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(
                curve.iteration.iter().copied().zip(curve.mean.iter().copied()),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(curve.group.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    for (j, curve) in dashed.iter().enumerate() {
        // A run is named `<group>, seed <seed>`: it takes its group's colour, or one after the completed groups'.
        let group = curves.iter().position(|c| curve.group.starts_with(&format!("{}, seed", c.group)));
        let color = PALETTE[group.unwrap_or(curves.len() + j) % PALETTE.len()];
        let points: Vec<(f64, f64)> = curve.iteration.iter().copied().zip(curve.mean.iter().copied()).collect();
        chart
            .draw_series(DashedLineSeries::new(points, 8, 5, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("{} (unfinished)", curve.group))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (7, 0)], color.stroke_width(2))
                    + PathElement::new(vec![(12, 0), (19, 0)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// The training losses, one panel per loss, one curve per (variant, labels).
fn loss_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    losses: &[(&str, &[Curve], &[Curve])],
) -> Result<(), String> {
    let titled = root.titled("Training losses (epoch means)", (FONT, 24)).map_err(|e| e.to_string())?;
    let panels = titled.split_evenly((2, 3));
    for ((metric, curves, dashed), panel) in losses.iter().zip(panels.iter()) {
        line_chart(panel, curves, dashed, metric, "iteration", "loss")?;
    }
    Ok(())
}

/// Final C_err against the number of labels (log axis), identity and Hungarian mappings with the seed spread
/// as error bars; variants without labels (InfoGAN) as horizontal lines.
fn c_err_vs_labels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, tables: &Tables) -> Result<(), String> {
    let labelled: Vec<_> = tables.rows.iter().filter(|r| r.n_labelled > 0).collect();
    let x_low = labelled.iter().map(|r| r.n_labelled as f64).fold(f64::INFINITY, f64::min) / 1.5;
    let x_high = labelled.iter().map(|r| r.n_labelled as f64).fold(0.0, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(root)
        .caption("Final C_err against the number of labels", (FONT, 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((x_low..x_high).log_scale(), 0f64..1f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("labelled training images (log scale)")
        .y_desc("C_err")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut colour = 0;
    let mut variants: Vec<&str> = labelled.iter().map(|r| r.variant.as_str()).collect();
    variants.dedup();
    for variant in variants {
        for (metric, mapping) in [(metric::C_ERR_IDENTITY, "identity"), (metric::C_ERR_HUNGARIAN, "Hungarian")] {
            let color = PALETTE[colour % PALETTE.len()];
            colour += 1;
            let points: Vec<(f64, f64, f64)> = labelled
                .iter()
                .filter(|r| r.variant == variant)
                .filter_map(|r| {
                    let s = r.finals.get(metric)?;
                    let spread = s.std.unwrap_or(0.0);
                    Some((r.n_labelled as f64, s.mean, spread))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().map(|&(x, m, _)| (x, m)), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(format!("{variant}, {mapping} mapping"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(points.iter().map(|&(x, m, s)| {
                    ErrorBar::new_vertical(x, (m - s).max(0.0), m, (m + s).min(1.0), color.filled(), 8)
                }))
                .map_err(|e| e.to_string())?;
        }
    }
    for row in tables.rows.iter().filter(|r| r.n_labelled == 0) {
        for (metric, mapping) in [(metric::C_ERR_IDENTITY, "identity"), (metric::C_ERR_HUNGARIAN, "Hungarian")] {
            let Some(s) = row.finals.get(metric) else { continue };
            let color = PALETTE[colour % PALETTE.len()];
            colour += 1;
            chart
                .draw_series(LineSeries::new([(x_low, s.mean), (x_high, s.mean)], color.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(format!("{} (0 labels), {mapping} mapping", row.variant))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::MiddleRight)
        .draw()
        .map_err(|e| e.to_string())
}
