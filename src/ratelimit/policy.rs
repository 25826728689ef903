//! The policy syntax: one or more windows, e.g. `20/minute` or `20/minute,200/day`.
//!
//! A window is `LIMIT/PERIOD` where PERIOD is a unit (`second`, `minute`, `hour`, `day`; also
//! plural or short: `s`, `sec`, `m`, `min`, `h`, `d`) optionally preceded by a count (`30s`,
//! `5min`, `2 hours`). A request is admitted only when every window of its policy admits it.

use std::fmt;
use std::time::Duration;

/// Largest limit of one window.
pub const MAX_LIMIT: u64 = 1_000_000;
/// Longest window (the Redis log of a subject lives this long).
pub const MAX_PERIOD: Duration = Duration::from_secs(7 * 86_400);
/// Most windows in one policy.
pub const MAX_WINDOWS: usize = 4;

/// At most `limit` requests in any period of `period` (sliding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub period: Duration,
}

/// The windows of one policy, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits(pub Vec<Window>);

impl Limits {
    /// The windows.
    pub fn windows(&self) -> &[Window] {
        &self.0
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}/{}s", w.limit, w.period.as_secs())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Limits {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let windows = s
            .split(',')
            .map(parse_window)
            .collect::<Result<Vec<_>, _>>()?;
        if windows.len() > MAX_WINDOWS {
            return Err(format!("at most {MAX_WINDOWS} windows per policy"));
        }
        Ok(Self(windows))
    }
}

fn parse_window(s: &str) -> Result<Window, String> {
    let s = s.trim();
    let (limit, period) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not LIMIT/PERIOD, e.g. 20/minute"))?;
    let limit: u64 = limit
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a whole number", limit.trim()))?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!("the limit must be between 1 and {MAX_LIMIT}"));
    }
    let period = parse_period(period.trim())?;
    Ok(Window { limit, period })
}

fn parse_period(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (count, unit) = s.split_at(split);
    let count: u64 = if count.is_empty() {
        1
    } else {
        count
            .parse()
            .map_err(|_| format!("`{count}` is too large"))?
    };
    let unit_secs = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        other => {
            return Err(format!(
                "`{other}` is not a unit; use second, minute, hour or day"
            ));
        }
    };
    let period = Duration::from_secs(count.saturating_mul(unit_secs));
    if period.is_zero() || period > MAX_PERIOD {
        return Err("a window must last from 1 second to 7 days".into());
    }
    Ok(period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(limit: u64, secs: u64) -> Window {
        Window {
            limit,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_documented_forms_parse() {
        let p = |s: &str| s.parse::<Limits>().expect(s).0;
        assert_eq!(p("20/minute"), [w(20, 60)]);
        assert_eq!(p("20/minute,200/day"), [w(20, 60), w(200, 86_400)]);
        assert_eq!(p(" 5 / 30s , 1/hour "), [w(5, 30), w(1, 3600)]);
        assert_eq!(p("3/2 hours"), [w(3, 7200)]);
        assert_eq!(p("10/SECOND"), [w(10, 1)]);
        assert_eq!(p("7/5min"), [w(7, 300)]);
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        for bad in [
            "",
            "20",
            "20/",
            "/minute",
            "0/minute",
            "-1/minute",
            "x/minute",
            "20/fortnight",
            "20/0s",
            "20/8d",
            "1/s,1/s,1/s,1/s,1/s",
            "20/minute,",
            "99999999999999999999/s",
            "1/99999999999999999999s",
        ] {
            assert!(bad.parse::<Limits>().is_err(), "`{bad}` should be refused");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(windows in prop::collection::vec((1..=MAX_LIMIT, 1..=MAX_PERIOD.as_secs()), 1..=MAX_WINDOWS)) {
            let limits = Limits(windows.iter().map(|&(l, s)| w(l, s)).collect());
            prop_assert_eq!(limits.to_string().parse::<Limits>(), Ok(limits));
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Limits>();
        }
    }
}
