//! The sliding-window-log decision, shared in meaning by the Redis script and the in-process
//! limiter: a request is admitted when, for every window, fewer than `limit` admitted requests
//! lie within the last `period`; an admitted request is recorded once, in one log per subject,
//! which serves every window of the policy (so a refusal by one window counts in none).
//!
//! A log rather than GCRA or a fixed window: GCRA with a burst of `limit` admits up to about
//! twice the limit within one `period`, and a fixed window admits twice the limit across an
//! edge; a log admits exactly `limit` in *any* period. The log of a subject holds at most the
//! largest limit of its policy, which is small for the policies this service uses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::policy::Window;

/// The state of one window after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// Requests still allowed now in this window.
    pub remaining: u64,
    /// Admitted: until the oldest counted request leaves the window. Refused by this window:
    /// until enough requests leave for one more to be admitted.
    pub reset: Duration,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub admitted: bool,
    /// One per window of the policy, in the policy's order.
    pub windows: Vec<WindowState>,
}

impl Decision {
    /// When refused: how long until every refusing window admits one more request.
    pub fn retry_after(&self) -> Duration {
        self.windows
            .iter()
            .filter(|w| w.remaining == 0)
            .map(|w| w.reset)
            .max()
            .unwrap_or_default()
    }
}

/// The longest period of `windows`: how long the log must be kept.
pub fn longest(windows: &[Window]) -> Duration {
    windows.iter().map(|w| w.period).max().unwrap_or_default()
}

/// Decides on one request at `now`, recording it in `log` (oldest first) when admitted.
pub fn decide(log: &mut VecDeque<Instant>, now: Instant, windows: &[Window]) -> Decision {
    let longest = longest(windows);
    while log
        .front()
        .is_some_and(|t| now.duration_since(*t) >= longest)
    {
        log.pop_front();
    }
    let in_window = |log: &VecDeque<Instant>, period: Duration| {
        log.len() - log.partition_point(|t| now.duration_since(*t) >= period)
    };
    let admitted = windows
        .iter()
        .all(|w| (in_window(log, w.period) as u64) < w.limit);
    if admitted {
        log.push_back(now);
    }
    let windows = windows
        .iter()
        .map(|w| {
            let count = in_window(log, w.period);
            let first = log.len() - count;
            let rank = count.saturating_sub(w.limit as usize);
            let reset = log
                .get(first + rank)
                .map(|t| (*t + w.period).saturating_duration_since(now))
                .unwrap_or_default();
            WindowState {
                remaining: w.limit.saturating_sub(count as u64),
                reset,
            }
        })
        .collect();
    Decision { admitted, windows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(limit: u64, secs: u64) -> Window {
        Window {
            limit,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn exactly_the_limit_is_admitted_then_one_more_once_the_oldest_leaves() {
        let start = Instant::now();
        let mut log = VecDeque::new();
        let windows = [w(3, 10)];
        for i in 0..3 {
            let d = decide(&mut log, start + Duration::from_secs(i), &windows);
            assert!(d.admitted);
            assert_eq!(d.windows[0].remaining, 2 - i);
        }
        let refused = decide(&mut log, start + Duration::from_secs(5), &windows);
        assert!(!refused.admitted);
        assert_eq!(refused.retry_after(), Duration::from_secs(5));
        assert!(!decide(&mut log, start + Duration::from_millis(9999), &windows).admitted);
        assert!(decide(&mut log, start + Duration::from_secs(10), &windows).admitted);
    }

    #[test]
    fn no_double_burst_across_what_would_be_a_fixed_window_edge() {
        let start = Instant::now();
        let mut log = VecDeque::new();
        let windows = [w(5, 60)];
        let mut admitted = 0;
        // 10 requests at 0:59 and 10 at 1:01: a fixed minute window would admit 10.
        for t in [59, 61] {
            for _ in 0..10 {
                admitted +=
                    decide(&mut log, start + Duration::from_secs(t), &windows).admitted as u32;
            }
        }
        assert_eq!(admitted, 5);
    }

    #[test]
    fn a_refusal_by_one_window_counts_in_no_window() {
        let start = Instant::now();
        let mut log = VecDeque::new();
        let windows = [w(2, 1), w(3, 100)];
        assert!(decide(&mut log, start, &windows).admitted);
        assert!(decide(&mut log, start, &windows).admitted);
        assert!(!decide(&mut log, start, &windows).admitted); // per-second window full
        let later = start + Duration::from_secs(1);
        let d = decide(&mut log, later, &windows);
        assert!(
            d.admitted,
            "the refused request was not recorded in the long window"
        );
        assert_eq!(d.windows[1].remaining, 0);
        let d = decide(&mut log, later + Duration::from_secs(1), &windows);
        assert!(!d.admitted);
        assert_eq!(d.retry_after(), Duration::from_secs(98));
    }
}
