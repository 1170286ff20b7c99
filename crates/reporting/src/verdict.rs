//! A claim of the paper as a report judges it: the claim, the measurement that tests it and the verdict.
//! `claims` decides them; `REPORT.md` and `index.html` show them.

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Held,
    NotHeld,
    /// The difference the claim rests on is inside the seed noise (or there is only one seed a side).
    WithinNoise,
    NotMeasured(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Held => write!(f, "**held**"),
            Verdict::NotHeld => write!(f, "**not held**"),
            Verdict::WithinNoise => write!(f, "**within seed noise**"),
            Verdict::NotMeasured(why) => write!(f, "**not measured** ({why})"),
        }
    }
}

/// A claim, what tests it and what came out.
pub struct ClaimResult {
    pub claim: &'static str,
    pub measurement: String,
    pub verdict: Verdict,
}
