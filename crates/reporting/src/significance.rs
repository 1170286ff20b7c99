//! Whether a difference between two rows exceeds the seed noise: the difference of their means with a 95%
//! confidence interval by Welch's t (unequal variances, Welch–Satterthwaite degrees of freedom), computed from each
//! row's mean, sample standard deviation and seed count. With fewer than two seeds on either side no interval
//! exists and the difference is reported as within seed noise: one run per side says nothing about the spread.

use statrs::distribution::{ContinuousCDF, StudentsT};

use ssinfogan_plan::metric;

use crate::aggregate::{Stat, Tables};

/// The confidence level of every interval in a report.
pub const LEVEL: f64 = 0.95;

/// `a − b` with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    pub delta: f64,
    /// None with fewer than two seeds on a side.
    pub ci: Option<(f64, f64)>,
    /// Seeds on each side.
    pub seeds: (usize, usize),
}

impl Difference {
    pub fn of(a: Stat, b: Stat) -> Difference {
        Difference { delta: a.mean - b.mean, ci: welch_interval(a, b), seeds: (a.n, b.n) }
    }

    /// The interval contains 0, or there is none.
    pub fn within_noise(&self) -> bool {
        match self.ci {
            Some((low, high)) => low <= 0.0 && high >= 0.0,
            None => true,
        }
    }

    /// The interval lies below 0: `a` is smaller than `b` beyond the seed noise.
    pub fn clearly_negative(&self) -> bool {
        self.ci.is_some_and(|(_, high)| high < 0.0)
    }

    /// The interval lies above 0.
    pub fn clearly_positive(&self) -> bool {
        self.ci.is_some_and(|(low, _)| low > 0.0)
    }

    /// `Δ +0.070, 95% CI [+0.012, +0.128]` and `: within seed noise` where it is; `Δ +0.070; 1 vs 2 seeds: within
    /// seed noise` without an interval.
    pub fn describe(&self, digits: usize) -> String {
        match self.ci {
            Some((low, high)) => format!(
                "Δ {:+.digits$}, 95% CI [{low:+.digits$}, {high:+.digits$}]{}",
                self.delta,
                if self.within_noise() { ": within seed noise" } else { "" }
            ),
            None => {
                format!("Δ {:+.digits$}; {} vs {} seeds: within seed noise", self.delta, self.seeds.0, self.seeds.1)
            }
        }
    }
}

/// The half-width of the 95% confidence interval of a mean over seeds (Student's t with n − 1 degrees of freedom),
/// or None with fewer than two seeds.
pub fn mean_interval(s: Stat) -> Option<f64> {
    let std = s.std?;
    if s.n < 2 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (s.n - 1) as f64).ok()?.inverse_cdf(0.5 + LEVEL / 2.0);
    Some(t * std / (s.n as f64).sqrt())
}

/// Welch's interval for the difference of two means, or None where a side has fewer than two seeds.
pub fn welch_interval(a: Stat, b: Stat) -> Option<(f64, f64)> {
    let (sa, sb) = (a.std?, b.std?);
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let delta = a.mean - b.mean;
    let (va, vb) = (sa * sa / a.n as f64, sb * sb / b.n as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        // Every seed of both rows gave the same value: the difference is exact.
        return Some((delta, delta));
    }
    let df = (va + vb).powi(2) / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.5 + LEVEL / 2.0);
    Some((delta - t * se, delta + t * se))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mean: f64, std: f64, n: usize) -> Stat {
        Stat { mean, std: Some(std), n }
    }

    #[test]
    fn welch_matches_the_textbook_interval() {
        // Equal variances and sizes: df = 2(n − 1) = 4, t(0.975, 4) = 2.776445, se = sqrt(2 · 1² / 3).
        let (low, high) = welch_interval(stat(3.0, 1.0, 3), stat(1.0, 1.0, 3)).unwrap();
        let half = 2.776445105 * (2.0f64 / 3.0).sqrt();
        assert!((low - (2.0 - half)).abs() < 1e-6 && (high - (2.0 + half)).abs() < 1e-6, "{low} {high}");
        // Unequal: va = 4/5, vb = 1/10, se = sqrt(0.9); df = 0.81 / (0.64/4 + 0.01/9) = 5.0276…, so t lies between
        // the tables' t(0.975, 6) = 2.446912 and t(0.975, 5) = 2.570582, close to the latter.
        let (low, high) = welch_interval(stat(10.0, 2.0, 5), stat(8.0, 1.0, 10)).unwrap();
        let t = (high - low) / 2.0 / 0.9f64.sqrt();
        assert!(((low + high) / 2.0 - 2.0).abs() < 1e-12);
        assert!(t > 2.55 && t < 2.570582, "{t}");
    }

    #[test]
    fn a_mean_over_three_seeds_has_the_textbook_interval() {
        // t(0.975, 2) = 4.302653: the half-width is 4.302653 · 1 / √3.
        let half = mean_interval(stat(0.5, 1.0, 3)).unwrap();
        assert!((half - 4.302652730 / 3f64.sqrt()).abs() < 1e-6, "{half}");
        assert_eq!(mean_interval(Stat { mean: 0.5, std: None, n: 1 }), None);
    }

    #[test]
    fn one_seed_or_an_interval_through_zero_is_within_seed_noise() {
        let single = Difference::of(Stat { mean: 0.1, std: None, n: 1 }, stat(0.3, 0.01, 3));
        assert!(single.ci.is_none() && single.within_noise() && !single.clearly_negative());
        assert_eq!(single.describe(3), "Δ -0.200; 1 vs 3 seeds: within seed noise");
        let noisy = Difference::of(stat(0.12, 0.05, 2), stat(0.10, 0.05, 2));
        assert!(noisy.within_noise() && noisy.describe(2).ends_with(": within seed noise"), "{}", noisy.describe(2));
        let clear = Difference::of(stat(0.05, 0.01, 3), stat(0.40, 0.02, 3));
        assert!(clear.clearly_negative() && !clear.within_noise() && !clear.clearly_positive());
        assert!(clear.describe(3).starts_with("Δ -0.350, 95% CI [-0"), "{}", clear.describe(3));
        // No spread at all on either side: the difference is exact.
        assert_eq!(welch_interval(stat(1.0, 0.0, 2), stat(0.5, 0.0, 2)), Some((0.5, 0.5)));
    }
}

/// The binomial standard error √(p(1−p)/n) of an error rate `p` measured on `n` images: the sampling error of
/// one evaluation's C_err, apart from the seed noise.
pub fn binomial_standard_error(p: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return f64::NAN;
    }
    (p.clamp(0.0, 1.0) * (1.0 - p.clamp(0.0, 1.0)) / n).sqrt()
}

/// `REPORT.md`'s note on how many images each evaluation classified (`evaluated_samples` in `metrics.csv`) and
/// the standard error of each row's final C_err at those counts; empty when the runs did not record the count.
pub fn sampling_error_markdown(tables: &Tables) -> String {
    use std::fmt::Write as _;
    let mut lines = Vec::new();
    let (mut finals, mut interims) = (Vec::new(), Vec::new());
    for (i, row) in tables.rows.iter().enumerate() {
        let counts: Vec<f64> = tables
            .finals_long
            .iter()
            .filter(|v| v.row == i && v.metric == metric::EVALUATED_SAMPLES)
            .map(|v| v.value)
            .collect();
        let (Some(p), Some(n)) = (row.finals.get(metric::C_ERR_HUNGARIAN), Stat::of(&counts)) else {
            continue;
        };
        let interim = tables
            .curves_long
            .iter()
            .filter(|v| v.row == i && v.metric == metric::EVALUATED_SAMPLES)
            .map(|v| v.value)
            .fold(f64::INFINITY, f64::min);
        let interim = interim.is_finite().then_some(interim).filter(|&m| m < n.mean);
        finals.push(n.mean);
        interims.extend(interim);
        lines.push(format!(
            "| {} | {:.4} | {:.4} | {} |",
            row.group,
            p.mean,
            binomial_standard_error(p.mean, n.mean),
            interim.map(|m| format!("{:.4}", binomial_standard_error(p.mean, m))).unwrap_or_else(|| "–".into())
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    let count = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        if lo == hi {
            format!("{lo:.0}")
        } else {
            format!("{lo:.0}–{hi:.0}")
        }
    };
    let final_n = count(&finals);
    let mut md = format!(
        "**Evaluation:** each run's final evaluation classifies {final_n} generated images (the same fixed latents \
         at every evaluation)"
    );
    let interim_n = (!interims.is_empty()).then(|| count(&interims));
    match &interim_n {
        Some(m) => {
            let _ = write!(
                md,
                "; the evaluations during training before it (curves, iterations to a C_err level) classify the \
                 first {m} of them, evenly over the code values"
            );
        }
        None => md.push_str(", and so does every evaluation during training"),
    }
    let _ = write!(
        md,
        ". The sampling error of C_err on n images is √(p(1−p)/n), apart from the seed noise:\n\n| row | C_err \
         (Hungarian) | s.e. at {final_n} | s.e. at {} |\n|---|---:|---:|---:|\n",
        interim_n.unwrap_or_else(|| "–".into())
    );
    for line in lines {
        md.push_str(&line);
        md.push('\n');
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod sampling_tests {
    #[test]
    fn the_standard_error_is_binomial() {
        assert!((super::binomial_standard_error(0.1, 10_000.0) - 0.003).abs() < 1e-12);
        assert_eq!(super::binomial_standard_error(0.0, 100.0), 0.0);
        assert!(super::binomial_standard_error(0.5, 0.0).is_nan());
    }
}
