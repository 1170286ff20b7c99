//! Reports from `results/<experiment>/`: reads every run's `metrics.csv`, aggregates over seeds (with polars,
//! which lives in this crate only), and writes the CSV and Markdown tables, the figures (plotters, PNG and SVG
//! with a bundled font, so they render on a machine without fonts), the sample grids (`image`) and `REPORT.md`,
//! where each claim of the paper stands beside the measurement that tests it, the LaTeX tables, and `index.html`,
//! a self-contained page with a latent explorer. It builds no numerics (no candle): it reads the run files through
//! `ssinfogan-plan`, their one owner, and the caller (the `ssinfogan report` command) says which runs exist and
//! hands over generated grids and traversals as plain pixels.
//!
//! Modules depend on each other in one direction only, and none on this root, which only assembles them: the
//! inputs ([`inputs`], [`traversal`]) and outputs ([`written`], [`error`]) at the bottom; the numbers
//! ([`aggregate`], [`significance`], [`ablations`]) above them; the renderings ([`tables`], [`latex`],
//! [`figures`], [`grids`], [`timing`]) above those; [`claims`] (`REPORT.md`) and [`explorer`] (`index.html`) on
//! top. xtask's `tests/modules.rs` keeps it so, in every crate of the workspace.

pub mod ablations;
pub mod aggregate;
pub mod claims;
pub mod error;
pub mod explorer;
pub mod figures;
mod font;
pub mod grids;
pub mod inputs;
pub mod latex;
pub mod morphometry;
pub mod morphometry_summary;
pub mod pixels;
pub mod progress;
pub mod significance;
pub mod tables;
pub mod timing;
pub mod traversal;
pub mod verdict;
pub mod written;

pub use aggregate::{Stat, Tables};
pub use error::ReportError;
pub use inputs::{group_name, DataSummary, ReportInputs, RunInfo, RunState};
/// The run files' types a report takes as they are: a run's sweep grids and explorer sheet, and a skipped label count.
pub use ssinfogan_plan::share::{GridImage, TraversalAxis, TraversalSheet};
pub use ssinfogan_plan::SkippedRun;
pub use written::Written;

/// Writes the tables, figures, grids and `REPORT.md` of `inputs` under its results directory. Every file goes
/// through a temporary name and a rename, so a report is never half-written.
pub fn write_report(inputs: &ReportInputs) -> Result<Written, ReportError> {
    let mut written = Written::default();
    let tables = aggregate::build(inputs)?;
    tables::write(&tables, inputs, &mut written)?;
    if let Some(baseline) = &inputs.baseline {
        tables::write_ablations(&tables, inputs, baseline, &mut written)?;
    }
    figures::write_all(&tables, inputs, &mut written)?;
    grids::write_all(inputs, &mut written)?;
    written.claims = claims::write_report_md(&tables, inputs, &mut written)?;
    let ablations_md = inputs.baseline.as_ref().map(|b| ablations::markdown(&tables, b));
    let claims = std::mem::take(&mut written.claims);
    let page = explorer::Page {
        tables_md: &tables::markdown(&tables, inputs),
        ablations_md: ablations_md.as_deref(),
        claims: &claims,
        running: &tables.running_runs,
    };
    explorer::write_page(inputs, &page, &mut written)?;
    written.claims = claims;
    Ok(written)
}
