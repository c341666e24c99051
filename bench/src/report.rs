//! Figures and how they are printed: a table per workload, or JSON.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Seconds,
    /// A rate, with its symbol: `"deletes/s"`, `"keys/s"`, `"events/s"`.
    PerSecond(&'static str),
    Megabytes,
}

impl Unit {
    fn symbol(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::PerSecond(symbol) => symbol,
            Unit::Megabytes => "MB",
        }
    }

    /// For rates more is better; for times and memory less is.
    fn higher_is_better(self) -> bool {
        matches!(self, Unit::PerSecond(_))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Lethe may cost at most this many times the baseline.
    MaxRatio(f64),
    /// Lethe's figure must stay below this value (in the figure's unit).
    Below(f64),
    /// Shown for context; nothing to pass.
    None,
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub dialect: &'static str,
    pub workload: &'static str,
    pub measure: String,
    pub unit: Unit,
    pub lethe: f64,
    pub baseline: Option<f64>,
    pub target: Target,
    /// Every measured value behind `lethe` and `baseline` (for the spread;
    /// JSON only).
    pub runs: Runs,
}

#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub lethe: Vec<f64>,
    pub baseline: Vec<f64>,
}

impl Runs {
    pub fn new(lethe: &[f64], baseline: &[f64]) -> Runs {
        Runs {
            lethe: lethe.to_vec(),
            baseline: baseline.to_vec(),
        }
    }
}

impl Figure {
    /// A figure of repeated timings: the median of each side, in
    /// milliseconds, with every run kept.
    pub fn median_millis(
        dialect: &'static str,
        workload: &'static str,
        measure: String,
        lethe: &[f64],
        baseline: &[f64],
        target: Target,
    ) -> Figure {
        Figure {
            dialect,
            workload,
            measure,
            unit: Unit::Millis,
            lethe: median(lethe),
            baseline: Some(median(baseline)),
            target,
            runs: Runs::new(lethe, baseline),
        }
    }

    /// How many times the baseline's cost Lethe's is: above 1 means Lethe is
    /// slower (or bigger), whatever the unit.
    pub fn ratio(&self) -> Option<f64> {
        let b = self.baseline?;
        Some(if self.unit.higher_is_better() {
            b / self.lethe
        } else {
            self.lethe / b
        })
    }

    pub fn pass(&self) -> Option<bool> {
        match self.target {
            Target::MaxRatio(max) => self.ratio().map(|r| r <= max),
            Target::Below(limit) => Some(self.lethe < limit),
            Target::None => None,
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            // One decimal unless that would round the limit (1/0.7 shows
            // as 1.43, not 1.4).
            Target::MaxRatio(max) if ((max * 10.0).round() - max * 10.0).abs() < 1e-9 => {
                format!("<= {max:.1}x")
            }
            Target::MaxRatio(max) => format!("<= {max:.2}x"),
            Target::Below(limit) => format!("< {limit:.0} {}", self.unit.symbol()),
            Target::None => "-".into(),
        }
    }

    fn value_text(&self, v: f64) -> String {
        let digits = if v >= 100.0 {
            0
        } else if v >= 10.0 {
            1
        } else {
            2
        };
        format!("{v:.digits$} {}", self.unit.symbol())
    }

    pub fn to_json(&self) -> Value {
        let (kind, value) = match self.target {
            Target::MaxRatio(m) => ("max_ratio", Some(m)),
            Target::Below(l) => ("below", Some(l)),
            Target::None => ("none", None),
        };
        json!({
            "dialect": self.dialect,
            "workload": self.workload,
            "measure": self.measure,
            "unit": self.unit.symbol(),
            "lethe": self.lethe,
            "baseline": self.baseline,
            "ratio": self.ratio(),
            "target": { "kind": kind, "value": value },
            "pass": self.pass(),
            "runs": { "lethe": self.runs.lethe, "baseline": self.runs.baseline },
        })
    }
}

/// One table per workload, in the order the figures came.
pub fn table(figures: &[Figure]) -> String {
    let header = [
        "dialect", "workload", "measure", "lethe", "baseline", "ratio", "target", "result",
    ];
    let mut out = String::new();
    let mut workloads: Vec<&str> = Vec::new();
    for f in figures {
        if !workloads.contains(&f.workload) {
            workloads.push(f.workload);
        }
    }
    for w in workloads {
        let rows: Vec<[String; 8]> = figures
            .iter()
            .filter(|f| f.workload == w)
            .map(|f| {
                [
                    f.dialect.to_string(),
                    f.workload.to_string(),
                    f.measure.clone(),
                    f.value_text(f.lethe),
                    f.baseline.map_or("-".into(), |b| f.value_text(b)),
                    f.ratio().map_or("-".into(), |r| format!("{r:.2}x")),
                    f.target_text(),
                    match f.pass() {
                        Some(true) => "PASS".into(),
                        Some(false) => "MISS".into(),
                        None => "-".into(),
                    },
                ]
            })
            .collect();
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        out.push_str(&line(&width.map(|w| "-".repeat(w))));
        for r in &rows {
            out.push_str(&line(r));
        }
        out.push('\n');
    }
    out
}

/// The nearest-rank `p`-th percentile of `v` (not empty), `p` in 0..=100:
/// the smallest value with at least `p` % of the values at or below it.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// The median of `v` (not empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_reads_as_times_slower_for_every_unit() {
        let f = |unit, lethe, baseline| Figure {
            dialect: "sqlite",
            workload: "w",
            measure: "m".into(),
            unit,
            lethe,
            baseline: Some(baseline),
            target: Target::MaxRatio(1.5),
            runs: Runs::default(),
        };
        assert_eq!(f(Unit::Millis, 30.0, 20.0).ratio(), Some(1.5));
        assert_eq!(
            f(Unit::PerSecond("deletes/s"), 500.0, 1000.0).ratio(),
            Some(2.0)
        );
        assert_eq!(f(Unit::Millis, 30.0, 20.0).pass(), Some(true));
    }

    #[test]
    fn target_text_keeps_two_decimals_only_when_needed() {
        let f = |max| Figure {
            dialect: "sqlite",
            workload: "w",
            measure: "m".into(),
            unit: Unit::Millis,
            lethe: 1.0,
            baseline: Some(1.0),
            target: Target::MaxRatio(max),
            runs: Runs::default(),
        };
        assert_eq!(f(1.5).target_text(), "<= 1.5x");
        assert_eq!(f(2.0).target_text(), "<= 2.0x");
        assert_eq!(f(1.0 / 0.7).target_text(), "<= 1.43x");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 100.0);
        assert_eq!(percentile(&v, 99.0), 198.0);
        assert_eq!(percentile(&v, 100.0), 200.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
