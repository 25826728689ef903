//! Latency histograms (microsecond resolution, HdrHistogram) and the report printer: one JSON
//! value per run, shown either as JSON (`--json`) or as a human table.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// A latency histogram from 1 µs to 1 h with 3 significant digits.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // Bounds are constants that hdrhistogram accepts; failure here is a programming error.
        #[allow(clippy::expect_used)]
        let h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        Self(h)
    }

    /// Records a duration (clamped to the histogram's range).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us.max(1));
    }

    /// Value at quantile `q` in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// `{count, p50_ms, p95_ms, p99_ms, max_ms, mean_ms}`; zeros when empty.
    pub fn summary(&self) -> Value {
        if self.0.is_empty() {
            return json!({"count": 0});
        }
        json!({
            "count": self.0.len(),
            "p50_ms": round3(self.ms(0.50)),
            "p95_ms": round3(self.ms(0.95)),
            "p99_ms": round3(self.ms(0.99)),
            "max_ms": round3(self.0.max() as f64 / 1000.0),
            "mean_ms": round3(self.0.mean() / 1000.0),
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Median of a sample (the mean of the two middle values for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Prints `report` as JSON or as a table: latency summaries become rows of one table, every
/// other field a `name  value` line.
pub fn print(report: &Value, as_json: bool) {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    print!("{}", table(report));
}

fn table(report: &Value) -> String {
    let mut plain = Vec::new();
    let mut latencies = Vec::new();
    if let Some(map) = report.as_object() {
        for (key, value) in map {
            if value.get("p50_ms").is_some() || value.get("count") == Some(&json!(0)) {
                latencies.push((key.clone(), value.clone()));
            } else {
                plain.push((key.clone(), value.clone()));
            }
        }
    }
    let mut out = String::new();
    let width = plain.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &plain {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{k:<width$}  {shown}\n"));
    }
    if !latencies.is_empty() {
        out.push_str(&format!(
            "\n{:<22} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
            "latency (ms)", "count", "p50", "p95", "p99", "max"
        ));
        for (k, v) in &latencies {
            let f = |name: &str| v.get(name).and_then(Value::as_f64).unwrap_or(0.0);
            out.push_str(&format!(
                "{:<22} {:>9} {:>10.3} {:>10.3} {:>10.3} {:>10.3}\n",
                k,
                v.get("count").and_then(Value::as_u64).unwrap_or(0),
                f("p50_ms"),
                f("p95_ms"),
                f("p99_ms"),
                f("max_ms")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let mut h = Latency::new();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        let p50 = s["p50_ms"].as_f64().expect("p50");
        let p99 = s["p99_ms"].as_f64().expect("p99");
        assert!((49.9..=50.1).contains(&p50), "{p50}");
        assert!((98.9..=99.1).contains(&p99), "{p99}");
        assert_eq!(s["count"], 100);
    }

    #[test]
    fn the_median_of_an_even_sample_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_table_puts_latencies_in_rows_and_other_fields_as_lines() {
        let mut h = Latency::new();
        h.record(Duration::from_millis(2));
        let t = table(&json!({"errors": 3, "first_event": h.summary()}));
        assert!(t.contains("errors  3"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("first_event") && l.contains("2.000")),
            "{t}"
        );
    }
}
