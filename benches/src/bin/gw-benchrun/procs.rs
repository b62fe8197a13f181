//! Child processes of the harness, and the machine's CPU accounting.
//!
//! Every process the harness starts is a [`Proc`]: it is stopped when the
//! value is dropped (SIGTERM through `kill PID`, then SIGKILL after a grace
//! period), so an error or a panic anywhere in the runner still ends it.
//! Nothing is ever killed by name, only by the pid we started.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A child process with its output in a log file.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
    /// The child's stdin, when it was asked for one.
    pub stdin: Option<ChildStdin>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log` (stdout to
    /// `stdout` instead, if given).
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        stdout: Option<&Path>,
        with_stdin: bool,
    ) -> Result<Proc> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let out = match stdout {
            Some(p) => File::create(p).with_context(|| format!("creating {}", p.display()))?,
            None => err.try_clone()?,
        };
        cmd.stdout(out).stderr(err).stdin(if with_stdin { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdin = child.stdin.take();
        Ok(Proc { name: name.to_string(), child: Some(child), log: log.to_path_buf(), stdin })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> Result<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Ok(s);
            }
            if stop() {
                bail!("interrupted");
            }
            if Instant::now() >= until {
                bail!("{} did not finish within {:?}", self.name, timeout);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes a line to the child's stdin (testpmd's "Press enter to exit").
    pub fn send_line(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// Stops the process: SIGTERM, up to `grace` to exit, then SIGKILL.
    /// Returns its exit status if it exited.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        // SIGTERM by pid through kill(1): the runner has no unsafe code.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).stderr(Stdio::null()).status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("gw-benchrun: {} (pid {}) ignored SIGTERM, killing it", self.name, child.id());
        let _ = child.kill();
        child.wait().ok()
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Resident and peak resident memory of a process, in MiB, from
/// /proc/PID/status (`VmRSS`, `VmHWM`).
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// CPU time (user + system) of a process, in clock ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Involuntary context switches of a process's DPDK worker lcore threads
/// (named `rte-worker-N` by DPDK 22.11's EAL, `lcore-worker-N` by older
/// ones), summed: each one is a moment a
/// busy-polling worker was taken off its CPU for something else.
pub fn worker_preemptions(pid: u32) -> Option<u64> {
    let mut total = None;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("rte-worker") && !comm.starts_with("lcore-worker") {
            continue;
        }
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let n = status
            .lines()
            .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        total = Some(total.unwrap_or(0) + n);
    }
    total
}

/// Busy and total clock ticks of all CPUs, from /proc/stat.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// Share of the machine's CPU time (percent) that went to processes other
/// than `ours` between two [`machine_ticks`] readings; `ours` is the CPU
/// ticks our processes used in that interval.
pub fn others_pct(start: (u64, u64), end: (u64, u64), ours: u64) -> f64 {
    let busy = end.0.saturating_sub(start.0);
    let total = end.1.saturating_sub(start.1).max(1);
    100.0 * busy.saturating_sub(ours) as f64 / total as f64
}

/// Steal and total clock ticks of one CPU (`cpuN` in /proc/stat). Steal
/// is time the hypervisor ran something else while this virtual CPU had
/// work: the DUT's worker stood still without being preempted by the guest.
pub fn cpu_steal_ticks(cpu: usize) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{cpu}");
    let line = s.lines().find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    steal_of_line(line)
}

/// The machine's online CPUs (the `cpuN` lines of /proc/stat), whatever
/// this process's affinity: the harness pins itself to one CPU
/// (`run::keep_off_the_dut_cpu`), so `available_parallelism` says 1.
pub fn online_cpus() -> usize {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    cpus_of_stat(&s)
}

fn cpus_of_stat(s: &str) -> usize {
    let is_cpu_n = |w: &str| {
        w.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    s.lines().filter(|l| l.split_whitespace().next().is_some_and(is_cpu_n)).count()
}

/// Steal (the 8th value) and the sum of the first eight of a `cpuN` line.
fn steal_of_line(line: &str) -> Option<(u64, u64)> {
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    Some((*v.get(7)?, v.iter().take(8).sum()))
}

/// Percent of a CPU's time stolen between two [`cpu_steal_ticks`] readings.
pub fn steal_pct(start: (u64, u64), end: (u64, u64)) -> f64 {
    let total = end.1.saturating_sub(start.1).max(1);
    100.0 * end.0.saturating_sub(start.0) as f64 / total as f64
}

/// How busy the machine is right now without us: percent of CPU time used
/// over `over`.
pub fn busy_now(over: Duration) -> f64 {
    let Some(a) = machine_ticks() else { return 0.0 };
    std::thread::sleep(over);
    let Some(b) = machine_ticks() else { return 0.0 };
    others_pct(a, b, 0)
}

/// Whether a unix socket named `name` (a path, or an abstract name as memif
/// uses) is listening, from /proc/net/unix.
pub fn unix_listening(name: &str) -> bool {
    let t = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    t.lines().any(|l| {
        let path = l.split_whitespace().nth(7).unwrap_or("");
        path == name || path.strip_prefix('@') == Some(name)
    })
}

/// Removes DPDK's runtime directory of a file prefix (config and lock
/// files EAL leaves behind in /var/run/dpdk/PREFIX).
pub fn remove_dpdk_runtime(prefix: &str) {
    for base in ["/var/run/dpdk", "/run/dpdk"] {
        let p = Path::new(base).join(prefix);
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpus_count_the_cpu_n_lines_not_the_sum_line() {
        let stat = "cpu  10 0 5 100 0 0 0 0 0 0\ncpu0 5 0 2 50 0 0 0 0 0 0\ncpu1 5 0 3 50 0 0 0 0 0 0\nintr 7\ncpufreq 1\n";
        assert_eq!(cpus_of_stat(stat), 2);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn our_own_accounting_reads() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        let (rss, peak) = rss_mib(me).unwrap();
        assert!(rss > 0.0 && peak >= rss);
        let (busy, total) = machine_ticks().unwrap();
        assert!(total >= busy);
        assert_eq!(others_pct((0, 0), (50, 100), 10), 40.0);
        assert_eq!(others_pct((0, 0), (50, 100), 80), 0.0);
        assert!(cpu_steal_ticks(0).is_some_and(|(steal, total)| total >= steal));
        assert_eq!(
            steal_of_line("cpu1 1051731 120282 236024 1908200 8058 0 9202 1826 0 0"),
            Some((1826, 3335323))
        );
        assert_eq!(steal_of_line("cpu1 1 2"), None);
        assert_eq!(steal_pct((10, 1000), (30, 1100)), 20.0);
    }

    #[test]
    fn a_child_is_stopped_on_drop() {
        let dir = std::env::temp_dir().join(format!("gwbench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let p = Proc::spawn("sleep", cmd, &dir.join("sleep.log"), None, false).unwrap();
        let pid = p.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(p);
        // Reaped by stop(): the pid is gone (or reused by something else).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!stat.starts_with("sleep"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
