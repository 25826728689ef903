//! Readings from /proc: a process's resident memory and CPU time, and this process's open-file
//! limit.

use std::collections::BTreeMap;

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

/// A process's command line with its NULs as spaces (PostgreSQL backends rewrite theirs to
/// `postgres: USER DATABASE CLIENT STATE`).
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Busy and total clock ticks of all CPUs (first line of /proc/stat; idle and iowait are not
/// busy), and the number of CPUs (its `cpuN` lines).
pub fn machine_ticks() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpus = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count() as u64;
    let (busy, total) = parse_machine(stat.lines().next()?)?;
    Some((busy, total, cpus))
}

fn parse_machine(line: &str) -> Option<(u64, u64)> {
    let v: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// CPU time (ticks) of a group of processes, by pid.
pub type Ticks = BTreeMap<u32, u64>;

/// `roots` and all their live descendants (uvicorn's or node's workers).
fn tree_ticks(stats: &[(u32, Stat)], roots: &[u32]) -> Ticks {
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
    group(stats, |pid, _| members.contains(&pid))
}

/// Every live process named `comm` (e.g. all `postgres` processes).
fn comm_ticks(stats: &[(u32, Stat)], comm: &str) -> Ticks {
    group(stats, |_, st| st.comm == comm)
}

fn group(stats: &[(u32, Stat)], keep: impl Fn(u32, &Stat) -> bool) -> Ticks {
    stats
        .iter()
        .filter(|(pid, st)| keep(*pid, st))
        .map(|(pid, st)| (*pid, st.cpu_ticks))
        .collect()
}

/// CPU time a group used between two readings, process by process: a process present in both
/// counts its difference, one started in between all of its time; one that exited in between
/// is not seen (its time in the window is lost, never counted as negative).
pub fn window_ticks(start: &Ticks, end: &Ticks) -> u64 {
    end.iter()
        .map(|(pid, t)| t.saturating_sub(start.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// One reading of CPU time (ticks): of the server tree, of each named group of processes, of
/// each group whose command line contains a string (this process excepted), of this process,
/// and of the machine.
#[derive(Debug, Clone, Default)]
pub struct CpuReading {
    pub tree: Ticks,
    pub comms: Vec<Ticks>,
    pub cmdlines: Vec<Ticks>,
    pub own: Ticks,
    /// (busy, total) ticks of all CPUs, and how many CPUs.
    pub machine: (u64, u64, u64),
}

pub fn read_cpu(roots: &[u32], comms: &[String], cmdlines: &[String]) -> CpuReading {
    let stats = all_stats();
    let me = std::process::id();
    // Not this process: its own command line names what it looks for.
    let with_cmdline = |needle: &String| {
        group(&stats, |pid, _| {
            pid != me && cmdline(pid).contains(needle.as_str())
        })
    };
    CpuReading {
        tree: tree_ticks(&stats, roots),
        comms: comms.iter().map(|c| comm_ticks(&stats, c)).collect(),
        cmdlines: cmdlines.iter().map(with_cmdline).collect(),
        own: tree_ticks(&stats, &[me]),
        machine: machine_ticks().unwrap_or_default(),
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
    fn the_machine_line_gives_busy_and_total_ticks() {
        // user nice system idle iowait irq softirq steal (guest fields are inside user)
        let line = "cpu  100 5 50 800 20 3 2 10 7 0";
        assert_eq!(parse_machine(line), Some((170, 990)));
        assert_eq!(parse_machine("cpu0 1 2 3 4 5 6 7 8"), None);
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
        let sum = |t: Ticks| t.values().sum::<u64>();
        assert_eq!(sum(tree_ticks(&stats, &[10])), 23);
        assert_eq!(sum(tree_ticks(&stats, &[11, 30])), 1018);
        assert_eq!(sum(comm_ticks(&stats, "postgres")), 103);
        assert_eq!(sum(comm_ticks(&stats, "nothing")), 0);
    }

    #[test]
    fn a_window_counts_each_process_once_and_an_exited_one_never_negatively() {
        let start: Ticks = [(1, 100), (2, 50), (3, 900)].into();
        // 1 went on, 2 is unchanged, 3 exited, 4 started in the window.
        let end: Ticks = [(1, 130), (2, 50), (4, 7)].into();
        assert_eq!(window_ticks(&start, &end), 37);
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
        let r = read_cpu(&[me], &[], &["study_mode_load".into()]);
        assert!(r.tree.values().sum::<u64>() > 0 && r.own == r.tree);
        assert!(
            !r.cmdlines[0].contains_key(&me),
            "this process is left out of command-line groups (its own names the needle)"
        );
        assert!(r.machine.1 >= r.machine.0 && r.machine.0 > 0 && r.machine.2 > 0);
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
