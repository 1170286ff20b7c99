//! `cargo xtask bench`: ms per training iteration of `ssinfogan` (the training crate's own step) and of the
//! PyTorch reference `bench/reference_torch.py` (the identical model and step), back to back on the same
//! machine, batch sizes and thread count, in alternating rounds; prints both and the ratio, writes
//! `results/bench/iteration.csv`. A benchmark, not a test: nothing asserts a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Threads for both implementations (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    batch_sizes: Vec<usize>,
    /// Untimed iterations before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed iterations per batch size and round; the median is reported.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Rounds of ssinfogan then PyTorch, one right after the other: a shared machine's speed drifts over
    /// minutes (whole runs ±10 % here), and each round's ratio compares the two in the same state. The table
    /// reports the median over rounds of each one's median and of the rounds' ratios.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Create target/bench-venv and install torch into it from PyPI when it is missing (a few GB, once).
    #[arg(long)]
    with_torch: bool,
    /// A Python that has torch (default: target/bench-venv/bin/python if it exists, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where results/bench/iteration.csv goes.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where datasets are found (the timed batches are real data).
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

use ssinfogan_plan::bench::{median, Timing};

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::workspace::workspace_root();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sizes = args.batch_sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let binary = crate::workspace::build_ssinfogan(false)?;
    crate::data::obtain(&binary, "mnist", &["--data-root".into(), args.data_root.display().to_string()], false)?;

    let venv = root.join("target").join("bench-venv");
    if args.with_torch && args.python.is_none() && !venv.join("bin").join("python").is_file() {
        install_torch(&venv)?;
    }
    let python = args.python.clone().unwrap_or_else(|| {
        let venv_python = venv.join("bin").join("python");
        if venv_python.is_file() {
            venv_python
        } else {
            PathBuf::from("python3")
        }
    });

    // The fast CPU paths, then candle's own ops for every op (`--ops candle`): what the paths gain.
    let time_ours = |candle_only: bool| -> anyhow::Result<Vec<Timing>> {
        eprintln!(
            "timing ssinfogan{} on {threads} threads, batch sizes {sizes}…",
            if candle_only { " with candle's ops only" } else { "" }
        );
        collect(
            Command::new(&binary)
                .current_dir(&root)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .args(["bench", "--json", "--batch-sizes", &sizes])
                .args(["--ops", if candle_only { "candle" } else { "fast" }])
                .args(["--warmup", &args.warmup.to_string(), "--iterations", &args.iterations.to_string()])
                .args(["--data-root", &args.data_root.display().to_string()]),
            "ssinfogan bench",
        )
    };
    let has_torch =
        Command::new(&python).args(["-c", "import torch"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !has_torch {
        eprintln!(
            "{} has no torch: only ssinfogan is timed. `cargo xtask bench --with-torch` installs torch into \
             target/bench-venv from PyPI, or pass --python PATH",
            python.display()
        );
    }
    let time_reference = || -> anyhow::Result<Vec<Timing>> {
        eprintln!("timing the PyTorch reference ({}) on {threads} threads…", python.display());
        collect(
            Command::new(&python)
                .current_dir(&root)
                .env("OMP_NUM_THREADS", threads.to_string())
                .arg(root.join("bench").join("reference_torch.py"))
                .args(["--threads", &threads.to_string(), "--batch-sizes", &sizes])
                .args(["--warmup", &args.warmup.to_string(), "--iterations", &args.iterations.to_string()]),
            "bench/reference_torch.py",
        )
    };
    let (mut ours_rounds, mut reference_rounds) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        eprintln!("round {round} of {}", args.rounds);
        ours_rounds.push(time_ours(false)?);
        if has_torch {
            reference_rounds.push(time_reference()?);
        }
    }
    let candle_only = time_ours(true)?;
    let ours = over_rounds(&ours_rounds);
    let reference = over_rounds(&reference_rounds);
    // Each round's ratio, per batch size, in round order.
    let mut round_ratios: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (ours, theirs) in ours_rounds.iter().zip(&reference_rounds) {
        for t in ours {
            if let Some(r) = theirs.iter().find(|r| r.batch_size == t.batch_size) {
                round_ratios.entry(t.batch_size).or_default().push(t.median_ms / r.median_ms);
            }
        }
    }

    let by_size: BTreeMap<usize, &Timing> = reference.iter().map(|t| (t.batch_size, t)).collect();
    let candle_by_size: BTreeMap<usize, &Timing> = candle_only.iter().map(|t| (t.batch_size, t)).collect();
    let torch_version = reference.first().map(|t| t.implementation.clone()).unwrap_or_else(|| "PyTorch".into());
    let products = ours.first().and_then(|t| t.cpu_products.clone()).unwrap_or_default();
    let cpu = cpu_model();
    let machine = if products.is_empty() { cpu.clone() } else { format!("{cpu} ({products} matrix products)") };
    println!(
        "\n{machine}, {threads} threads, median of {} iterations after {} warm-up, over {} rounds (ssinfogan then PyTorch)",
        args.iterations, args.warmup, args.rounds
    );
    println!(
        "| batch | candle ops only ms/it | ssinfogan ms/it | {torch_version} ms/it | ours / candle only | ours / PyTorch \
         | each round |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut csv = String::from(
        "batch_size,threads,candle_ops_median_ms,ssinfogan_median_ms,ssinfogan_min_ms,ssinfogan_max_ms,\
         pytorch_median_ms,pytorch_min_ms,pytorch_max_ms,ratio_to_candle_ops,ratio_to_pytorch,\
         ratio_to_pytorch_each_round,rounds,pytorch_version,cpu,cpu_products\n",
    );
    let every_timing = ours_rounds.iter().chain(&reference_rounds).flatten().chain(&candle_only);
    if let Some(t) = every_timing.into_iter().find(|t| t.threads != threads) {
        bail!("{} ran on {} threads, not the {threads} asked for", t.implementation, t.threads);
    }
    for ours in &ours {
        let theirs = by_size.get(&ours.batch_size);
        let candle = candle_by_size.get(&ours.batch_size).map(|t| t.median_ms);
        let rounds = round_ratios.get(&ours.batch_size).map_or(&[][..], Vec::as_slice);
        let ratio = (!rounds.is_empty()).then(|| median(rounds));
        let each_round = rounds.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
        let gain = candle.map(|c| ours.median_ms / c);
        let cell = |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} |",
            ours.batch_size,
            cell(candle, 1),
            ours.median_ms,
            cell(theirs.map(|t| t.median_ms), 1),
            cell(gain, 2),
            cell(ratio, 2),
            if each_round.is_empty() { "–" } else { &each_round }
        );
        let field = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        csv.push_str(&format!(
            "{},{threads},{},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{},\"{cpu}\",{products}\n",
            ours.batch_size,
            field(candle),
            ours.median_ms,
            ours.min_ms,
            ours.max_ms,
            field(theirs.map(|t| t.median_ms)),
            field(theirs.map(|t| t.min_ms)),
            field(theirs.map(|t| t.max_ms)),
            field(gain),
            field(ratio),
            each_round.replace(' ', ";"),
            args.rounds,
            theirs.map_or(String::new(), |t| t.implementation.clone()),
        ));
    }
    let path = root.join(&args.results).join("bench").join("iteration.csv");
    crate::slurm::write_atomically(&path, csv.as_bytes())?;
    println!("\n{}", path.display());
    Ok(())
}

/// One timing per batch size from several rounds' timings: the median of the rounds' medians, the least of
/// their minima and the largest of their maxima.
fn over_rounds(rounds: &[Vec<Timing>]) -> Vec<Timing> {
    let Some(first) = rounds.first() else { return Vec::new() };
    first
        .iter()
        .map(|t| {
            let same: Vec<&Timing> =
                rounds.iter().filter_map(|r| r.iter().find(|u| u.batch_size == t.batch_size)).collect();
            let medians: Vec<f64> = same.iter().map(|u| u.median_ms).collect();
            Timing {
                implementation: t.implementation.clone(),
                batch_size: t.batch_size,
                threads: t.threads,
                iterations: same.iter().map(|u| u.iterations).sum(),
                median_ms: median(&medians),
                min_ms: same.iter().map(|u| u.min_ms).fold(f64::INFINITY, f64::min),
                max_ms: same.iter().map(|u| u.max_ms).fold(f64::NEG_INFINITY, f64::max),
                cpu_products: t.cpu_products.clone(),
            }
        })
        .collect()
}

/// Runs `command` and parses one JSON timing per stdout line.
fn collect(command: &mut Command, what: &str) -> anyhow::Result<Vec<Timing>> {
    let output = command.stderr(Stdio::inherit()).output().with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({})", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("{what} printed `{l}`, not a timing")))
        .collect()
}

fn install_torch(venv: &Path) -> anyhow::Result<()> {
    eprintln!("creating {} and installing torch from PyPI (a few GB, once)…", venv.display());
    let status = Command::new("python3").args(["-m", "venv"]).arg(venv).status().context("cannot run python3")?;
    if !status.success() {
        bail!("`python3 -m venv {}` failed ({status}); install python3-venv", venv.display());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "torch", "numpy"])
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!("`pip install torch` failed ({status}); is PyPI reachable?");
    }
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
        .replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(batch_size: usize, median_ms: f64, min_ms: f64, max_ms: f64) -> Timing {
        Timing {
            implementation: "x".into(),
            batch_size,
            threads: 2,
            iterations: 0,
            median_ms,
            min_ms,
            max_ms,
            cpu_products: None,
        }
    }

    #[test]
    fn rounds_combine_into_the_median_of_medians_and_the_extremes() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        let rounds = vec![
            vec![timing(64, 10.0, 9.0, 12.0), timing(128, 20.0, 19.0, 22.0)],
            vec![timing(128, 30.0, 25.0, 31.0), timing(64, 14.0, 8.0, 15.0)],
            vec![timing(64, 11.0, 10.0, 13.0), timing(128, 21.0, 20.0, 40.0)],
        ];
        let combined = over_rounds(&rounds);
        let by_size: Vec<(usize, f64, f64, f64)> =
            combined.iter().map(|t| (t.batch_size, t.median_ms, t.min_ms, t.max_ms)).collect();
        assert_eq!(by_size, vec![(64, 11.0, 8.0, 15.0), (128, 21.0, 19.0, 40.0)]);
        assert!(over_rounds(&[]).is_empty());
    }
}
