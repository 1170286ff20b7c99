//! What a reader opens: `index.html` in a real browser (headless Chromium) and the LaTeX tables in a real
//! `pdflatex`. The tests that need those programs are `ignore`d here and run by `.ci/run`, which installs them
//! (Debian: chromium, texlive-latex-base, texlive-latex-recommended); the page's precomputed images are checked
//! without a browser too.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use ssinfogan_reporting::{write_report, DataSummary, ReportInputs, RunInfo, RunState, TraversalAxis, TraversalSheet};

/// Six rows (two noise samples × three code values) of thirteen columns (c1, c2: five steps; u1: three values) of
/// 4×4 grey images, each a flat grey of its own: `20 + 3 · (row · 13 + column)` of 255.
fn sheet() -> TraversalSheet {
    let (rows, columns) = (6, 13);
    let mut pixels = Vec::new();
    for r in 0..rows {
        for c in 0..columns {
            pixels.extend(std::iter::repeat_n(grey(r, c) as f32 / 255.0, 16));
        }
    }
    let continuous = |name: &str| TraversalAxis {
        name: name.into(),
        continuous: true,
        values: vec![-2.0, -1.0, 0.0, 1.0, 2.0],
        base: vec![2, 2],
    };
    TraversalSheet {
        variant: "ss-infogan".into(),
        n_labelled: 20,
        seed: 1,
        code_name: "digit".into(),
        code_values: 3,
        noise_samples: 2,
        axes: vec![
            continuous("c1"),
            continuous("c2"),
            TraversalAxis { name: "u1".into(), continuous: false, values: vec![0.0, 1.0, 2.0], base: vec![1, 0] },
        ],
        channels: 1,
        height: 4,
        width: 4,
        pixels,
    }
}

fn grey(row: usize, column: usize) -> u8 {
    (20 + 3 * (row * 13 + column)) as u8
}

fn run(root: &Path, variant: &str, n: usize, seed: u64) -> RunInfo {
    RunInfo {
        variant: variant.into(),
        n_labelled: n,
        seed,
        dir: root.join(format!("runs/{variant}-n{n}-s{seed}")),
        state: RunState::Completed,
        instruction_set: None,
    }
}

/// A metrics.csv evaluated at iterations 100 and 200.
fn write_metrics(dir: &Path, c_err: f64, frechet: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("iteration,epoch,metric,value\n");
    for (iteration, late) in [(100, 0.3), (200, 0.0)] {
        for metric in ["c_err_identity", "c_err_hungarian", "q_err_real_identity", "q_err_real_hungarian"] {
            csv.push_str(&format!("{iteration},0,{metric},{}\n", c_err + late));
        }
        csv.push_str(&format!(
            "{iteration},0,frechet_distance,{frechet}\n{iteration},0,mi_code_class_normalised,0.8\n"
        ));
        csv.push_str(&format!("{iteration},0,mi_lower_bound_ss,1.5\n{iteration},0,mi_q_ss_label,1.2\n"));
    }
    std::fs::write(dir.join("metrics.csv"), csv).unwrap();
}

/// A report of an ablation study (two variants × two seeds, and one without labels) with an explorer sheet.
fn report(dir: &Path) -> PathBuf {
    let root = dir.join("results/mnist-ablations");
    let runs = vec![
        run(&root, "baseline", 132, 1),
        run(&root, "baseline", 132, 2),
        run(&root, "lambda_ss-8", 132, 1),
        run(&root, "lambda_ss-8", 132, 2),
        // The longest name of experiments/mnist-ablations.toml, for the tables' widths.
        run(&root, "q-ss-on-fakes", 132, 1),
        run(&root, "infogan", 0, 1),
    ];
    for (run, c_err, frechet) in runs
        .iter()
        .zip([(0.05, 20.0), (0.07, 21.0), (0.10, 24.0), (0.12, 26.0), (0.11, 123.0), (0.4, 35.0)])
        .map(|(r, (c, f))| (r, c, f))
    {
        write_metrics(&run.dir, c_err, frechet);
    }
    let inputs = ReportInputs {
        experiment: "mnist-ablations".into(),
        results_dir: root.clone(),
        profile: None,
        overrides: Vec::new(),
        include_running: false,
        data: DataSummary { origin: "fixture".into(), train_size: 8000, test_size: 10, full_dataset: true, note: None },
        classifier_accuracy: Some(0.97),
        schedule: "batch 8".into(),
        runs,
        skipped: vec![],
        grids: vec![],
        baseline: Some("baseline".into()),
        traversals: vec![sheet()],
        morphometry: Vec::new(),
        real_morphometry: None,
    };
    write_report(&inputs).unwrap();
    root
}

/// The sheet as the page carries it: the PNG inside `const SHEETS = […]`.
fn sprite_of(html: &str) -> image::GrayImage {
    let start = html.find("data:image/png;base64,").unwrap() + "data:image/png;base64,".len();
    let end = start + html[start..].find('"').unwrap();
    let png = base64::engine::general_purpose::STANDARD.decode(&html[start..end]).unwrap();
    image::load_from_memory(&png).unwrap().to_luma8()
}

#[test]
fn the_page_carries_every_precomputed_image_and_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = report(dir.path());
    let html = std::fs::read_to_string(root.join("index.html")).unwrap();
    let data = &html[html.find("const SHEETS = ").unwrap()..];
    assert!(data.starts_with("const SHEETS = [{"), "{}", &data[..200]);
    let sprite = sprite_of(data);
    assert_eq!(sprite.dimensions(), (13 * 4, 6 * 4));
    for row in 0..6 {
        for column in 0..13 {
            assert_eq!(sprite.get_pixel(column * 4 + 1, row * 4 + 2).0[0], grey(row as usize, column as usize));
        }
    }
    // Nothing the page needs lies outside it: no scripts, styles or images fetched from anywhere.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"), "{html}");
    assert!(html.contains("<th>ablation</th>") && html.contains("<td>lambda_ss-8</td>"), "{html}");
    assert!(html.contains("within seed noise"), "{html}");
}

fn chromium(profile: &Path, args: &[String]) -> std::process::Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is not installed (Debian: apt-get install chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Uncaught"), "a JavaScript error:\n{stderr}");
    out
}

/// Whether `image` holds a `side`×`side` square of grey `value` anywhere.
fn has_square(image: &image::RgbaImage, value: u8, side: u32) -> bool {
    let is = |x: u32, y: u32| image.get_pixel(x, y).0[..3].iter().all(|&v| v.abs_diff(value) <= 1);
    (0..image.height().saturating_sub(side)).any(|y| {
        (0..image.width().saturating_sub(side))
            .any(|x| is(x, y) && is(x + side - 1, y) && (y..y + side).all(|yy| (x..x + side).all(|xx| is(xx, yy))))
    })
}

#[test]
#[ignore = "needs headless Chromium (Debian: chromium); .ci/run installs it and runs this with --ignored"]
fn the_explorer_shows_the_image_of_its_url_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let root = report(dir.path());
    let page = format!("file://{}", root.join("index.html").display());
    // Two views that differ in one code: c1 at 1 (step 3) and at −2 (step 0), digit 1 of noise sample 2 (row 4).
    let views = [("digit=1&z=1&c1=1", grey(4, 3)), ("digit=1&z=1&c1=-2", grey(4, 0))];
    let mut shots = Vec::new();
    for (i, (hash, expected)) in views.iter().enumerate() {
        let shot = dir.path().join(format!("view-{i}.png"));
        chromium(
            &dir.path().join(format!("profile-{i}")),
            &[
                "--window-size=1000,800".into(),
                format!("--screenshot={}", shot.display()),
                format!("{page}#run=ss-infogan-n20&{hash}"),
            ],
        );
        let image = image::open(&shot).expect("chromium wrote no screenshot").to_rgba8();
        shots.push((image, *expected));
    }
    // Each screenshot shows its view's image, 4 pixels drawn 8 times over, and not the other view's.
    for (i, (image, expected)) in shots.iter().enumerate() {
        assert!(has_square(image, *expected, 30), "view {i}: no 30×30 square of grey {expected}");
        let other = shots[1 - i].1;
        assert!(!has_square(image, other, 30), "view {i} shows the other view's image (grey {other})");
    }
    // The page loads without a script error, also from a URL with nonsense in it, and says it is ready.
    for (i, hash) in ["", "#run=nope&digit=99&z=-4&c1=abc&u1=7"].iter().enumerate() {
        let out = chromium(&dir.path().join(format!("dom-{i}")), &["--dump-dom".into(), format!("{page}{hash}")]);
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("data-explorer=\"ready\""), "{hash}: not ready:\n{dom}");
        assert!(!dom.contains("data-error"), "{hash}: a script error:\n{dom}");
    }
}

#[test]
#[ignore = "needs pdflatex and booktabs (Debian: texlive-latex-base, texlive-latex-recommended); .ci/run installs them"]
fn the_latex_tables_compile_in_a_minimal_document() {
    let dir = tempfile::tempdir().unwrap();
    let root = report(dir.path());
    let tables = root.join("tables");
    // The one-column forms in a one-column article (its default text width, 345 pt), the `table*` forms across
    // a two-column article's page.
    let documents = [
        ("one-column", "", "\\input{main.tex}\n\\input{ablations.tex}\nSee Tables~\\ref{tab:mnist-ablations-main} and \\ref{tab:mnist-ablations-ablations}."),
        ("two-column", "twocolumn", "\\input{main-wide.tex}\n\\input{ablations-wide.tex}\nSee Tables~\\ref{tab:mnist-ablations-main-wide} and \\ref{tab:mnist-ablations-ablations-wide}."),
    ];
    for (name, options, body) in documents {
        std::fs::write(
            tables.join(format!("{name}.tex")),
            format!(
                "\\documentclass[{options}]{{article}}\n\\usepackage[T1]{{fontenc}}\n\\usepackage{{booktabs}}\n\
                 \\begin{{document}}\n{body}\n\\end{{document}}\n"
            ),
        )
        .unwrap();
        for _ in 0..2 {
            // Twice, as LaTeX resolves references.
            let out = Command::new("pdflatex")
                .args(["-interaction=nonstopmode", "-halt-on-error", &format!("{name}.tex")])
                .current_dir(&tables)
                .output()
                .expect("pdflatex is not installed (Debian: texlive-latex-base)");
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stdout));
        }
        let log = std::fs::read_to_string(tables.join(format!("{name}.log"))).unwrap();
        assert!(!log.contains("undefined references") && !log.contains("Undefined control sequence"), "{log}");
        // A table wider than its column runs into the margin: TeX reports it as an overfull box.
        assert!(!log.contains("Overfull \\hbox"), "{name}: a table does not fit:\n{log}");
        assert!(std::fs::metadata(tables.join(format!("{name}.pdf"))).unwrap().len() > 1000);
    }
}

#[test]
#[ignore = "needs pdffonts (Debian: poppler-utils); .ci/run installs it"]
fn the_paper_figures_embed_their_font() {
    let dir = tempfile::tempdir().unwrap();
    let root = report(dir.path());
    for name in ["convergence", "c-err-vs-labels", "frechet-distance"] {
        let pdf = root.join(format!("figures/{name}.pdf"));
        let out =
            Command::new("pdffonts").arg(&pdf).output().expect("pdffonts is not installed (Debian: poppler-utils)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listing = String::from_utf8_lossy(&out.stdout);
        // name type encoding emb sub uni object ID: one font, DejaVu Sans, embedded as a subset.
        let fonts: Vec<&str> = listing.lines().skip(2).collect();
        assert!(!fonts.is_empty(), "{name}: no font:\n{listing}");
        for font in fonts {
            let columns: Vec<&str> = font.split_whitespace().collect();
            assert!(font.contains("DejaVuSans"), "{name}: {font}");
            let n = columns.len();
            assert_eq!(&columns[n - 5..n - 3], ["yes", "yes"], "{name}: not an embedded subset: {font}");
        }
    }
}
