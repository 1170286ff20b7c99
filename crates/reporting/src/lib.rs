//! Reports from `results/<experiment>/`: reads every run's `metrics.csv` and `summary.json` (with polars,
//! which lives in this crate only), aggregates over seeds, and writes the CSV and Markdown tables, the figures
//! (plotters), the sample grids and `REPORT.md`, where each claim of the paper stands beside our measurement.
//! It depends on `core` only, so reports rebuild without the training code. Nothing is implemented here yet.
