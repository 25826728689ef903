//! Process series read at scrape time: open file descriptors and their limit.
//!
//! Every socket (each open ChatKit stream, each keep-alive connection, each pooled database or
//! Redis connection) is a file descriptor; when the process reaches `RLIMIT_NOFILE` new
//! connections fail with `EMFILE`. Exported so an alert can fire before that. Linux only (read
//! from `/proc/self`); elsewhere the series are absent. Must not hold state: each scrape reads
//! afresh.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

/// `process_open_fds` and `process_max_fds`, computed on every scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = [
            (
                "process_open_fds",
                "File descriptors open in this process",
                open_fds(),
            ),
            (
                "process_max_fds",
                "Soft limit of open file descriptors (RLIMIT_NOFILE)",
                max_fds(),
            ),
        ];
        for (name, help, value) in series {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// Entries of `/proc/self/fd` (the directory handle read here included, as Prometheus' own
/// process collectors count it).
fn open_fds() -> Option<i64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    i64::try_from(entries.count()).ok()
}

fn max_fds() -> Option<i64> {
    parse_max_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit from `/proc/self/limits`' `Max open files` line; `None` when unlimited.
fn parse_max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_the_limits_table() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             96362                96362                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn both_series_are_encoded_with_the_registry_prefix() {
        let mut registry = prometheus_client::registry::Registry::with_prefix("study_mode");
        registry.register_collector(Box::new(ProcessCollector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(
            out.contains("# TYPE study_mode_process_open_fds gauge"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE study_mode_process_max_fds gauge"),
            "{out}"
        );
        let open = out
            .lines()
            .find_map(|l| l.strip_prefix("study_mode_process_open_fds "))
            .and_then(|v| v.parse::<i64>().ok())
            .expect("a value");
        assert!(open >= 3, "stdin, stdout, stderr at least: {open}");
    }
}
