//! The report's figures in two styles. For the screen (REPORT.md and the page): PNG, titled, with the text in
//! the bundled font (`font`). For a paper: SVG and PDF, 3.5 in wide (one column; panels of several plots 7 in, a
//! two-column `figure*`), untitled (the caption is the paper's), text of at least 8 pt at that size, every series
//! told apart by its dash pattern and marker as well as by its colour. The paper files carry their font: the SVG
//! has its text as outlines and the PDF embeds the subset of DejaVu Sans it uses (svg2pdf, from the same drawing),
//! so they look the same on every machine and in every viewer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use ssinfogan_plan::metric;

use crate::aggregate::{Curve, Tables};
use crate::error::ReportError;
use crate::font::{ensure_font, FONT};
use crate::grids::write_png;
use crate::inputs::ReportInputs;
use crate::written::{write_file, Written};

pub(crate) const SIZE: (u32, u32) = (960, 600);
/// Figures of several panels on the screen.
const PANELS: (u32, u32) = (1440, 840);

/// SVG's user unit is the CSS pixel, 1/96 in: a column of 3.5 in is 336 of them.
const PAPER_COLUMN: (u32, u32) = (336, 235);
/// Two columns' width, 7 in, for the figures of several panels.
const PAPER_WIDE: (u32, u32) = (672, 403);

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

/// Sizes and decorations of one of the two styles.
#[derive(Debug, Clone, Copy)]
struct Style {
    paper: bool,
    /// Font sizes as plotters takes them (its SVG writes `font-size` as this / 1.24): tick labels, axis
    /// descriptions, legend, and the title (`None`: untitled).
    ticks: f64,
    axis: f64,
    legend: f64,
    title: Option<f64>,
    stroke: u32,
    margin: u32,
    x_area: u32,
    y_area: u32,
    /// Whether a chart draws its own legend (on paper, the panels of one figure share one beside them).
    legend_box: bool,
}

impl Style {
    const SCREEN: Style = Style {
        paper: false,
        ticks: 14.0,
        axis: 16.0,
        legend: 14.0,
        title: Some(22.0),
        stroke: 2,
        margin: 14,
        x_area: 44,
        y_area: 64,
        legend_box: true,
    };
    /// 14 / 1.24 = 11.3 px = 8.5 pt for ticks and legend, 15 / 1.24 = 12.1 px = 9.1 pt for the axes.
    const PAPER: Style = Style {
        paper: true,
        ticks: 14.0,
        axis: 15.0,
        legend: 14.0,
        title: None,
        stroke: 2,
        margin: 12,
        x_area: 38,
        y_area: 46,
        legend_box: true,
    };

    /// The style of the panels of one figure: on paper they share one legend, drawn beside them.
    fn for_panels(self) -> Style {
        Style { legend_box: !self.paper, ..self }
    }

    /// A panel's title: on the screen as drawn, on paper left to the caption but for the panels of one figure,
    /// which a caption cannot name one by one.
    fn panel_title(&self) -> f64 {
        if self.paper {
            self.axis
        } else {
            22.0
        }
    }
}

/// The smallest font the paper style writes, in points at the figure's printed size: fonts of venues' figures
/// are asked to be 7–9 pt.
pub const PAPER_MIN_FONT_PT: f64 = 14.0 / 1.24 * 0.75;

/// How series `i` is told apart beyond its colour in the paper style: a dash pattern (dash, gap; 0: solid) and a
/// marker.
fn pattern(i: usize) -> ((i32, i32), Marker) {
    const DASHES: [(i32, i32); 4] = [(0, 0), (7, 3), (2, 2), (10, 3)];
    const MARKERS: [Marker; 5] = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Cross, Marker::Diamond];
    (DASHES[i % DASHES.len()], MARKERS[i % MARKERS.len()])
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Cross,
    Diamond,
}

/// A marker's outline around `(x, y)`, in pixels: every marker is a filled polygon (a circle an octagon, the
/// cross a plus sign), so that a marker of any kind is one element type.
fn marker_outline(kind: Marker, (x, y): (i32, i32)) -> Vec<(i32, i32)> {
    let r = 3;
    let points: Vec<(i32, i32)> = match kind {
        Marker::Circle => vec![(3, 1), (1, 3), (-1, 3), (-3, 1), (-3, -1), (-1, -3), (1, -3), (3, -1)],
        Marker::Square => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
        Marker::Triangle => vec![(0, -r - 1), (r + 1, r), (-r - 1, r)],
        Marker::Cross => vec![
            (-1, -4),
            (1, -4),
            (1, -1),
            (4, -1),
            (4, 1),
            (1, 1),
            (1, 4),
            (-1, 4),
            (-1, 1),
            (-4, 1),
            (-4, -1),
            (-1, -1),
        ],
        Marker::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
    };
    points.into_iter().map(|(dx, dy)| (x + dx, y + dy)).collect()
}

/// A marker, or a legend entry's line with its marker, drawn in pixels around one point of the chart: plotters'
/// own markers come in a type per shape, and a series' legend takes one type.
struct Glyph<C> {
    at: C,
    /// Line pieces, from and to, in pixels right of the point (none for a marker alone).
    dashes: Vec<(i32, i32)>,
    line: ShapeStyle,
    /// The marker's outline around the point, and its fill.
    outline: Vec<(i32, i32)>,
    fill: ShapeStyle,
}

impl<'a, C> PointCollection<'a, C> for &'a Glyph<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Glyph<C> {
    fn draw<I: Iterator<Item = (i32, i32)>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), plotters_backend::DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else { return Ok(()) };
        for &(from, to) in &self.dashes {
            backend.draw_line((x + from, y), (x + to, y), &self.line)?;
        }
        if !self.outline.is_empty() {
            backend.fill_polygon(self.outline.iter().map(|&(dx, dy)| (x + dx, y + dy)), &self.fill)?;
        }
        Ok(())
    }
}

/// A marker centred on a data point.
fn marker<C>(at: C, kind: Marker, colour: RGBColor) -> Glyph<C> {
    Glyph { at, dashes: Vec::new(), line: colour.into(), outline: marker_outline(kind, (0, 0)), fill: colour.filled() }
}

/// A legend entry: a short line in the series' colour and dash pattern, with its marker where it has one.
fn legend_entry(
    at: (i32, i32),
    colour: RGBColor,
    stroke: u32,
    dash: (i32, i32),
    kind: Option<Marker>,
) -> Glyph<(i32, i32)> {
    const LENGTH: i32 = 21;
    let dashes = if dash.0 > 0 {
        (0..LENGTH).step_by((dash.0 + dash.1) as usize).map(|start| (start, (start + dash.0).min(LENGTH))).collect()
    } else {
        vec![(0, LENGTH)]
    };
    Glyph {
        at,
        dashes,
        line: colour.stroke_width(stroke),
        outline: kind.map(|kind| marker_outline(kind, (LENGTH / 2, 0))).unwrap_or_default(),
        fill: colour.filled(),
    }
}

/// A figure's width on paper: one column, or two for the figures of several panels.
#[derive(Debug, Clone, Copy)]
enum Width {
    Column,
    Wide,
}

/// Draws the screen style into `<stem>.png` and the paper style into `<stem>.svg` and `<stem>.pdf`, each written
/// atomically.
fn render<F, G>(stem: &Path, width: Width, png: F, svg: G, written: &mut Written) -> Result<(), ReportError>
where
    F: FnOnce(DrawingArea<BitMapBackend, Shift>, Style) -> Result<(), String>,
    G: FnOnce(DrawingArea<SVGBackend, Shift>, Style) -> Result<(), String>,
{
    ensure_font()?;
    let (screen, paper) = match width {
        Width::Column => (SIZE, PAPER_COLUMN),
        Width::Wide => (PANELS, PAPER_WIDE),
    };
    let png_path = stem.with_extension("png");
    let mut pixels = vec![0u8; (screen.0 * screen.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, screen).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Plot { path: png_path.clone(), message: e.to_string() })?;
        png(root.clone(), Style::SCREEN).map_err(|message| ReportError::Plot { path: png_path.clone(), message })?;
        root.present().map_err(|e| ReportError::Plot { path: png_path.clone(), message: e.to_string() })?;
    }
    write_png(&png_path, screen.0, screen.1, pixels, written)?;

    let svg_path = stem.with_extension("svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, paper).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Plot { path: svg_path.clone(), message: e.to_string() })?;
        svg(root.clone(), Style::PAPER).map_err(|message| ReportError::Plot { path: svg_path.clone(), message })?;
        root.present().map_err(|e| ReportError::Plot { path: svg_path.clone(), message: e.to_string() })?;
    }
    let (outlined, pdf) =
        paper_files(&text).map_err(|message| ReportError::Plot { path: svg_path.clone(), message })?;
    write_file(&svg_path, outlined.as_bytes(), written)?;
    write_file(&stem.with_extension("pdf"), &pdf, written)
}

/// The bundled font as usvg looks fonts up, loaded once per process; plotters' SVG names the family
/// `sans-serif`, which it answers.
fn font_database() -> Arc<svg2pdf::usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<svg2pdf::usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut fonts = svg2pdf::usvg::fontdb::Database::new();
            fonts.load_font_data(include_bytes!("../assets/DejaVuSans.ttf").to_vec());
            fonts.set_sans_serif_family("DejaVu Sans");
            Arc::new(fonts)
        })
        .clone()
}

/// Plotters' SVG of the paper style as the two files a paper takes: the SVG with its text as outlines, and a PDF
/// of the same drawing, 96 SVG units to the inch, with the font's subset embedded.
fn paper_files(svg: &str) -> Result<(String, Vec<u8>), String> {
    use svg2pdf::usvg;
    let options = usvg::Options { fontdb: font_database(), font_family: "DejaVu Sans".into(), ..Default::default() };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| format!("not an SVG usvg reads: {e}"))?;
    let outlined = tree.to_string(&usvg::WriteOptions::default());
    let pdf = svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions { dpi: 96.0 })
        .map_err(|e| format!("cannot make a PDF of it: {e:?}"))?;
    Ok((outlined, in_canonical_order(pdf)))
}

/// The PDF with the entries of its resource dictionaries (`/xo4 16 0 R`, one per line) in sorted order. svg2pdf
/// keeps a page's resources in a hash map whose order changes from process to process, so the same drawing
/// would give other bytes each time; a report rebuilt from the same records must be identical. Sorting lines
/// within a dictionary keeps its length, so the cross-reference table's byte offsets stay right. Stream data
/// (`stream` … `endstream`, compressed) is left as it is.
fn in_canonical_order(pdf: Vec<u8>) -> Vec<u8> {
    let is_reference = |line: &[u8]| -> bool {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(_) => return false,
        };
        let Some(rest) = text.trim_start().strip_prefix('/') else { return false };
        let mut parts = rest.split(' ');
        matches!(
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(name), Some(object), Some("0"), Some("R"), None)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !object.is_empty()
                    && object.bytes().all(|b| b.is_ascii_digit())
        ) && text.starts_with(' ')
    };
    let mut out = Vec::with_capacity(pdf.len());
    let mut run: Vec<&[u8]> = Vec::new();
    let mut in_stream = false;
    let flush = |run: &mut Vec<&[u8]>, out: &mut Vec<u8>| {
        run.sort_unstable();
        for line in run.drain(..) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    };
    let lines: Vec<&[u8]> = pdf.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        if !in_stream && is_reference(line) {
            run.push(line);
            continue;
        }
        flush(&mut run, &mut out);
        match *line {
            b"stream" => in_stream = true,
            b"endstream" => in_stream = false,
            _ => {}
        }
        out.extend_from_slice(line);
        if i < last {
            out.push(b'\n');
        }
    }
    flush(&mut run, &mut out);
    out
}

macro_rules! both {
    ($stem:expr, $width:expr, $written:expr, |$root:ident, $style:ident| $body:expr) => {
        render($stem, $width, |$root, $style| $body, |$root, $style| $body, $written)
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
        both!(&dir.join(file), Width::Column, written, |root, style| line_chart(
            &root,
            style,
            curves,
            dashed,
            title,
            "iteration",
            y_label
        ))?;
    }
    let losses: Vec<(&str, &[Curve], &[Curve])> =
        [metric::D_REAL, metric::D_FAKE, metric::G_ADV, metric::Q_SS_FAKE, metric::Q_US, metric::Q_SS_REAL]
            .into_iter()
            .map(|m| (m, of(&tables.curves, m), of(&tables.running, m)))
            .filter(|(_, curves, dashed)| !curves.is_empty() || !dashed.is_empty())
            .collect();
    if !losses.is_empty() {
        both!(&dir.join("losses"), Width::Wide, written, |root, style| loss_panels(&root, style, &losses))?;
    }
    if tables.rows.iter().any(|r| r.n_labelled > 0 && r.finals.contains_key(metric::C_ERR_IDENTITY)) {
        both!(&dir.join("c-err-vs-labels"), Width::Column, written, |root, style| c_err_vs_labels(
            &root, style, tables
        ))?;
    }
    for group in &inputs.morphometry {
        let stem = dir.join(format!("morphometry-{}-n{}", group.variant, group.n_labelled));
        both!(&stem, Width::Wide, written, |root, style| morphometry_panels(&root, style, group))?;
    }
    Ok(())
}

/// `area`, titled where the style titles figures.
fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    style: Style,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    match style.title {
        Some(size) => area.titled(title, (FONT, size + 2.0)).map_err(|e| e.to_string()),
        None => Ok(area.clone()),
    }
}

/// On paper, the area for a figure's panels, with one legend for them all drawn to its right (entry `i` in the
/// colour, dash pattern and marker of series `i`; an unfinished run's dashed, without a marker); on the screen,
/// the whole area (each panel has its own legend).
fn beside_a_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    style: Style,
    entries: &[String],
) -> Result<DrawingArea<DB, Shift>, String> {
    if !style.paper {
        return Ok(area.clone());
    }
    let width = area.dim_in_pixel().0 as i32;
    let (panels, legend) = area.split_horizontally(width * 7 / 10);
    let (mut completed, mut dashed) = (0, 0);
    for (k, entry) in entries.iter().enumerate() {
        let y = 24 + 20 * k as i32;
        let (colour, dash, kind) = if entry.ends_with("(unfinished)") {
            dashed += 1;
            (PALETTE[(completed + dashed - 1) % PALETTE.len()], (7, 5), None)
        } else {
            completed += 1;
            let (dash, kind) = pattern(completed - 1);
            (PALETTE[(completed - 1) % PALETTE.len()], dash, Some(kind))
        };
        legend.draw(&legend_entry((6, y), colour, style.stroke, dash, kind)).map_err(|e| e.to_string())?;
        let text = TextStyle::from((FONT, style.legend)).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        legend.draw(&Text::new(entry.clone(), (34, y), text)).map_err(|e| e.to_string())?;
    }
    Ok(panels)
}

/// A group's first seed: each morphometric along each continuous code's sweep, the mean over the lines with a
/// band of one standard deviation, one panel per morphometric, one curve per code.
fn morphometry_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    style: Style,
    group: &crate::morphometry::GroupMorphometry,
) -> Result<(), String> {
    let (Some(seed), Some(record)) = (group.seeds.first(), group.records.first()) else { return Ok(()) };
    let title = format!("Morphometry along each code's sweep: {}, seed {seed} (mean ± 1 sd over lines)", group.group);
    let titled = titled(root, style, &title)?;
    let codes: Vec<String> = record.codes.iter().map(|c| c.code.clone()).collect();
    let titled = beside_a_legend(&titled, style, &codes)?;
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
                    // On paper ρ is in the tables: a legend beside the panels names each code once.
                    group: if style.paper {
                        code.code.clone()
                    } else {
                        format!("{} (ρ = {:.2})", code.code, m.spearman_mean)
                    },
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
        chart_of(
            panel,
            style.for_panels(),
            &curves,
            &[],
            Some(name),
            ("code value", x_range.clone(), 1),
            unit,
            false,
            &[],
        )?;
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

/// Curves over iterations, each with its seed spread (min to max) as a translucent band; titled on the screen.
fn line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    style: Style,
    curves: &[Curve],
    dashed: &[Curve],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<(), String> {
    let x_max = curves.iter().chain(dashed).flat_map(|c| c.iteration.iter()).fold(1.0f64, |a, &b| a.max(b));
    let title = style.title.map(|_| title);
    chart_of(root, style, curves, dashed, title, (x_label, 0f64..x_max, 0), y_label, true, &[])
}

/// Curves with their bands over the x range `x.1`, its ticks with `x.2` decimals; `dashed` ones (unfinished
/// runs) as dashed lines in the colour of their group's curve. In the paper style each curve also has its own
/// dash pattern and markers (about eight along it).
#[allow(clippy::too_many_arguments)]
fn chart_of<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    style: Style,
    curves: &[Curve],
    dashed: &[Curve],
    title: Option<&str>,
    x: (&str, std::ops::Range<f64>, usize),
    y_label: &str,
    fine_mesh: bool,
    order: &[String],
) -> Result<(), String> {
    let (x_label, x_range, decimals) = x;
    let y = y_range(curves.iter().chain(dashed).flat_map(|c| c.low.iter().chain(c.high.iter()).chain(c.mean.iter())));
    let mut builder = ChartBuilder::on(root);
    if let Some(title) = title {
        builder.caption(title, (FONT, style.panel_title()));
    }
    let mut chart = builder
        .margin(style.margin)
        .x_label_area_size(style.x_area)
        .y_label_area_size(style.y_area)
        .build_cartesian_2d(x_range, y)
        .map_err(|e| e.to_string())?;
    let x_format = |x: &f64| format!("{x:.decimals$}");
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_format)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, style.ticks))
        .axis_desc_style((FONT, style.axis));
    if style.paper {
        // A panel of a two-column figure is about an inch wide: three ticks fit under it.
        let x_ticks = if style.legend_box { 6 } else { 3 };
        mesh.x_labels(x_ticks).y_labels(5);
    }
    if !fine_mesh || style.paper {
        // The minor grid lines are most of a PNG's bytes (their antialiased pixels do not compress), and the page
        // inlines every figure; on paper they are clutter.
        mesh.light_line_style(TRANSPARENT);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    for (i, curve) in curves.iter().enumerate() {
        // A panel without some group (InfoGAN has no q_ss_real) keeps the others' styles: the figure's order.
        let i = order.iter().position(|g| *g == curve.group).unwrap_or(i);
        let color = PALETTE[i % PALETTE.len()];
        if curve.low.iter().zip(&curve.high).any(|(l, h)| h > l) {
            let mut band: Vec<(f64, f64)> = curve.iteration.iter().copied().zip(curve.high.iter().copied()).collect();
            band.extend(curve.iteration.iter().copied().zip(curve.low.iter().copied()).rev());
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
                .map_err(|e| e.to_string())?;
        }
        let points: Vec<(f64, f64)> = curve.iteration.iter().copied().zip(curve.mean.iter().copied()).collect();
        let line = color.stroke_width(style.stroke);
        let (dash, kind) = pattern(i);
        let series = if style.paper && dash.0 > 0 {
            chart.draw_series(DashedLineSeries::new(points.clone(), dash.0, dash.1, line))
        } else {
            chart.draw_series(LineSeries::new(points.clone(), line))
        }
        .map_err(|e| e.to_string())?;
        if style.paper {
            let stroke = style.stroke;
            series.label(curve.group.as_str()).legend(move |at| legend_entry(at, color, stroke, dash, Some(kind)));
            let every = points.len().div_ceil(8).max(1);
            chart
                .draw_series(points.iter().step_by(every).map(|&p| marker(p, kind, color)))
                .map_err(|e| e.to_string())?;
        } else {
            series
                .label(curve.group.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
    }
    for (j, curve) in dashed.iter().enumerate() {
        // A run is named `<group>, seed <seed>`: it takes its group's colour, or one after the completed groups'.
        let group = curves.iter().position(|c| curve.group.starts_with(&format!("{}, seed", c.group)));
        let color = PALETTE[group.unwrap_or(curves.len() + j) % PALETTE.len()];
        let points: Vec<(f64, f64)> = curve.iteration.iter().copied().zip(curve.mean.iter().copied()).collect();
        let stroke = style.stroke;
        chart
            .draw_series(DashedLineSeries::new(points, 8, 5, color.stroke_width(stroke)))
            .map_err(|e| e.to_string())?
            .label(format!("{} (unfinished)", curve.group))
            .legend(move |at| legend_entry(at, color, stroke, (7, 5), None));
    }
    if !style.legend_box {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, style.legend))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// The training losses, one panel per loss, one curve per (variant, labels).
fn loss_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    style: Style,
    losses: &[(&str, &[Curve], &[Curve])],
) -> Result<(), String> {
    let titled = titled(root, style, "Training losses (epoch means)")?;
    // The groups in the order the panels colour them: the panel with the most curves has them all.
    let widest = losses.iter().max_by_key(|(_, curves, dashed)| curves.len() + dashed.len());
    let groups: Vec<String> = widest
        .map(|(_, curves, dashed)| {
            let mut groups: Vec<String> = curves.iter().map(|c| c.group.clone()).collect();
            groups.extend(dashed.iter().map(|c| format!("{} (unfinished)", c.group)));
            groups
        })
        .unwrap_or_default();
    let titled = beside_a_legend(&titled, style, &groups)?;
    let panels = titled.split_evenly((2, 3));
    for ((metric, curves, dashed), panel) in losses.iter().zip(panels.iter()) {
        let x_max = curves.iter().chain(dashed.iter()).flat_map(|c| c.iteration.iter()).fold(1.0f64, |a, &b| a.max(b));
        // Each panel keeps its loss's name on paper too: one caption cannot name six panels.
        let x = ("iteration", 0f64..x_max, 0);
        chart_of(panel, style.for_panels(), curves, dashed, Some(metric), x, "loss", true, &groups)?;
    }
    Ok(())
}

/// Final C_err against the number of labels (log axis), identity and Hungarian mappings with the seed spread
/// as error bars; variants without labels (InfoGAN) as horizontal lines.
fn c_err_vs_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    style: Style,
    tables: &Tables,
) -> Result<(), String> {
    let labelled: Vec<_> = tables.rows.iter().filter(|r| r.n_labelled > 0).collect();
    let x_low = labelled.iter().map(|r| r.n_labelled as f64).fold(f64::INFINITY, f64::min) / 1.5;
    let x_high = labelled.iter().map(|r| r.n_labelled as f64).fold(0.0, f64::max) * 1.5;
    let mut builder = ChartBuilder::on(root);
    if style.title.is_some() {
        builder.caption("Final C_err against the number of labels", (FONT, 22));
    }
    let mut chart = builder
        .margin(style.margin)
        .x_label_area_size(style.x_area)
        .y_label_area_size(style.y_area)
        .build_cartesian_2d((x_low..x_high).log_scale(), 0f64..1f64)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc(if style.paper { "labelled training images" } else { "labelled training images (log scale)" })
        .y_desc("C_err")
        .label_style((FONT, style.ticks))
        .axis_desc_style((FONT, style.axis));
    if style.paper {
        mesh.light_line_style(TRANSPARENT);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    let mut series = 0;
    let mut variants: Vec<&str> = labelled.iter().map(|r| r.variant.as_str()).collect();
    variants.dedup();
    for variant in variants {
        for (metric, mapping) in [(metric::C_ERR_IDENTITY, "identity"), (metric::C_ERR_HUNGARIAN, "Hungarian")] {
            let color = PALETTE[series % PALETTE.len()];
            let (dash, kind) = pattern(series);
            series += 1;
            let points: Vec<(f64, f64, f64)> = labelled
                .iter()
                .filter(|r| r.variant == variant)
                .filter_map(|r| {
                    let s = r.finals.get(metric)?;
                    let spread = s.std.unwrap_or(0.0);
                    Some((r.n_labelled as f64, s.mean, spread))
                })
                .collect();
            let line = color.stroke_width(style.stroke);
            let means = points.iter().map(|&(x, m, _)| (x, m));
            let drawn = if style.paper && dash.0 > 0 {
                chart.draw_series(DashedLineSeries::new(means, dash.0, dash.1, line))
            } else {
                chart.draw_series(LineSeries::new(means, line))
            }
            .map_err(|e| e.to_string())?
            .label(format!("{variant}, {mapping} mapping"));
            let stroke = style.stroke;
            if style.paper {
                drawn.legend(move |at| legend_entry(at, color, stroke, dash, Some(kind)));
                chart
                    .draw_series(points.iter().map(|&(x, m, _)| marker((x, m), kind, color)))
                    .map_err(|e| e.to_string())?;
            } else {
                drawn.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
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
            let color = PALETTE[series % PALETTE.len()];
            let (dash, _) = pattern(series);
            series += 1;
            let ends = [(x_low, s.mean), (x_high, s.mean)];
            let label = format!("{} (0 labels), {mapping} mapping", row.variant);
            if style.paper {
                let stroke = style.stroke;
                chart
                    .draw_series(DashedLineSeries::new(ends, dash.0.max(4), dash.1.max(3), color.stroke_width(stroke)))
                    .map_err(|e| e.to_string())?
                    .label(label)
                    .legend(move |at| legend_entry(at, color, stroke, (dash.0.max(4), dash.1.max(3)), None));
            } else {
                chart
                    .draw_series(LineSeries::new(ends, color.stroke_width(1)))
                    .map_err(|e| e.to_string())?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, style.legend))
        .position(SeriesLabelPosition::MiddleRight)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(group: &str, offset: f64) -> Curve {
        let iteration: Vec<f64> = (1..=50).map(|i| f64::from(i) * 100.0).collect();
        let mean: Vec<f64> = iteration.iter().map(|i| offset + 1000.0 / (i + 100.0)).collect();
        Curve { group: group.into(), iteration, low: mean.clone(), high: mean.clone(), mean }
    }

    /// The resource dictionaries' entries in sorted order, the length (so every byte offset after them) kept,
    /// stream data untouched.
    #[test]
    fn a_pdf_s_resources_are_put_in_one_order() {
        let pdf = b"<<\n  /XObject <<\n      /xo4 16 0 R\n      /xo10 28 0 R\n      /xo0 8 0 R\n  >>\n>>\nstream\n  /b 2 0 R\n  /a 1 0 R\nendstream\n%%EOF";
        let canonical = in_canonical_order(pdf.to_vec());
        assert_eq!(canonical.len(), pdf.len());
        let expected = b"<<\n  /XObject <<\n      /xo0 8 0 R\n      /xo10 28 0 R\n      /xo4 16 0 R\n  >>\n>>\nstream\n  /b 2 0 R\n  /a 1 0 R\nendstream\n%%EOF";
        assert_eq!(String::from_utf8_lossy(&canonical), String::from_utf8_lossy(expected));
    }

    /// Every text of a paper figure is at least 8 pt at its printed size (3.5 in wide): in the SVG plotters
    /// draws, before the text becomes outlines, font sizes are CSS pixels, 96 to the inch.
    #[test]
    fn paper_figures_are_a_column_wide_untitled_with_fonts_of_at_least_8_pt() {
        ensure_font().unwrap();
        let curves = [curve("infogan (0 labels)", 0.5), curve("ss-infogan (132 labels)", 0.0)];
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, PAPER_COLUMN).into_drawing_area();
            line_chart(&root, Style::PAPER, &curves, &[], "A title", "iteration", "C_err").unwrap();
            root.present().unwrap();
        }
        assert!(text.contains("width=\"336\""), "{}", &text[..200]);
        assert!(!text.contains("A title"), "the paper style titles nothing");
        let sizes: Vec<f64> =
            text.split("font-size=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap()).collect();
        assert!(sizes.len() > 10, "{text}");
        let smallest_pt = sizes.iter().copied().fold(f64::INFINITY, f64::min) * 72.0 / 96.0;
        assert!(smallest_pt >= 8.0, "{smallest_pt} pt");
        assert!((smallest_pt - PAPER_MIN_FONT_PT).abs() < 1e-9, "{smallest_pt} against {PAPER_MIN_FONT_PT}");
        // The two curves differ in more than colour: the second is dashed, and each has its own markers.
        assert_ne!(pattern(0), pattern(1));
        let (outlined, pdf) = paper_files(&text).unwrap();
        assert!(!outlined.contains("<text") && outlined.contains("<path"));
        assert!(pdf.starts_with(b"%PDF-"));
        // The same drawing gives the same bytes: a report rebuilt from the same records is identical.
        assert_eq!(paper_files(&text).unwrap().1, pdf);
    }
}
