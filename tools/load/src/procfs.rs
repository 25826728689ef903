//! Readings from /proc: a process's resident memory and CPU time, and this process's open-file
//! limit.

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

/// What `/proc/PID/stat` says of a process: its name, parent and CPU time (clock ticks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime (this process's own threads, live or gone; not its children).
    pub cpu_ticks: u64,
}

/// Parses a `/proc/PID/stat` line. The name sits in parentheses and may itself contain spaces
/// and parentheses, so the fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    // After ") ": state(3) ppid(4) … utime(14) stime(15), numbered as in proc(5).
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(Stat {
        comm,
        ppid: u32::try_from(field(4)?).ok()?,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// Every live process's stat, by pid.
fn all_stats() -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some((pid, parse_stat(&line)?))
    })
    .collect()
}

/// CPU time (ticks) of `roots` and all their live descendants (uvicorn's or node's workers).
fn tree_ticks(stats: &[(u32, Stat)], roots: &[u32]) -> u64 {
    let mut members: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        for (pid, st) in stats {
            if st.ppid == parent && !members.contains(pid) {
                members.push(*pid);
            }
        }
        i += 1;
    }
    stats
        .iter()
        .filter(|(pid, _)| members.contains(pid))
        .map(|(_, st)| st.cpu_ticks)
        .sum()
}

/// CPU time (ticks) of every live process named `comm` (e.g. all `postgres` processes).
fn comm_ticks(stats: &[(u32, Stat)], comm: &str) -> u64 {
    stats
        .iter()
        .filter(|(_, st)| st.comm == comm)
        .map(|(_, st)| st.cpu_ticks)
        .sum()
}

/// One reading of CPU time: of the server tree, and of each named group of processes.
#[derive(Debug, Clone, Default)]
pub struct CpuReading {
    pub tree: u64,
    pub comms: Vec<u64>,
}

pub fn read_cpu(roots: &[u32], comms: &[String]) -> CpuReading {
    let stats = all_stats();
    CpuReading {
        tree: tree_ticks(&stats, roots),
        comms: comms.iter().map(|c| comm_ticks(&stats, c)).collect(),
    }
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on every common Linux).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
        let line =
            "4242 (uvicorn (w) 2) S 4200 4242 4200 0 -1 4194560 1 0 0 0 150 37 3 4 20 0 1 0 5 6 7";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "uvicorn (w) 2".into(),
                ppid: 4200,
                cpu_ticks: 187
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_tree_sums_its_descendants_and_a_name_sums_its_processes() {
        let st = |comm: &str, ppid, cpu_ticks| Stat {
            comm: comm.into(),
            ppid,
            cpu_ticks,
        };
        let stats = vec![
            (10, st("node", 1, 5)),
            (11, st("node", 10, 7)),
            (12, st("node", 11, 11)),
            (20, st("postgres", 1, 100)),
            (21, st("postgres", 20, 3)),
            (30, st("other", 1, 1000)),
        ];
        assert_eq!(tree_ticks(&stats, &[10]), 23);
        assert_eq!(tree_ticks(&stats, &[11, 30]), 1018);
        assert_eq!(comm_ticks(&stats, "postgres"), 103);
        assert_eq!(comm_ticks(&stats, "nothing"), 0);
    }

    #[test]
    fn this_process_is_found_in_proc_with_its_cpu_time() {
        let mut x = 0u64;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let me = std::process::id();
        assert!(read_cpu(&[me], &[]).tree > 0);
        assert!(clock_ticks_per_sec() > 0);
    }

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
