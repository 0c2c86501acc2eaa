//! This process's CPU time and resident memory, read from `/proc` on Linux (for
//! `/metrics` and `/api/status`); `None` elsewhere or when unreadable.

/// Clock ticks per second in `/proc/<pid>/stat`: Linux reports times in `USER_HZ`,
/// which its user-space ABI fixes at 100 on every mainstream architecture.
const USER_HZ: f64 = 100.0;

/// CPU time (user + system) used by this process and its finished threads, in seconds.
#[must_use]
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces: count fields after its ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // After ')': field 3 is the state, so utime (14) and stime (15) are the 12th and
    // 13th.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Resident memory of this process, in bytes.
#[must_use]
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let busy: u64 = (0..20_000_000u64).fold(0, |a, x| a.wrapping_add(x * x));
        assert_ne!(busy, 1);
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
    }
}
