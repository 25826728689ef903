//! Readings from /proc: a process's resident memory and this process's open-file limit.

/// `VmRSS` of `pid` in KiB, `None` when the process is gone or /proc is unavailable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&status, "VmRSS:")
}

/// The sum of `VmRSS` over `pids` (missing processes count 0).
pub fn total_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| rss_kib(*p)).sum()
}

/// This process's own `VmRSS` in KiB.
pub fn own_rss_kib() -> u64 {
    rss_kib(std::process::id()).unwrap_or(0)
}

fn field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The soft `Max open files` limit of this process.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rss_field_is_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  900 kB\nVmRSS:\t  1234 kB\nThreads: 2\n";
        assert_eq!(field_kib(status, "VmRSS:"), Some(1234));
    }

    #[test]
    fn this_process_has_a_resident_size_and_a_file_limit() {
        assert!(own_rss_kib() > 0);
        assert!(open_file_limit().unwrap_or(0) > 0);
    }
}
