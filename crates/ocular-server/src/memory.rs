//! Process memory as the kernel sees it: RSS, anonymous RSS and the cgroup limit.
//!
//! Read from `/proc/self/status` and the cgroup files on each call (microseconds), so health
//! and metrics always report the truth rather than an allocator's estimate.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MemoryUsage {
    pub rss_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub cgroup_limit_bytes: Option<u64>,
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1), if any.
pub fn cgroup_limit() -> Option<u64> {
    let v2 = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|c| {
        let path = c.lines().find_map(|l| l.strip_prefix("0::"))?.trim().to_string();
        std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max")).ok()
    });
    let raw = v2.or_else(|| std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok())?;
    // "max" (v2) or a huge number (v1) both mean "no limit".
    raw.trim().parse::<u64>().ok().filter(|&b| b < (1 << 60))
}

pub fn usage() -> MemoryUsage {
    MemoryUsage {
        rss_bytes: status_kb("VmRSS:"),
        anon_bytes: status_kb("RssAnon:"),
        cgroup_limit_bytes: cgroup_limit(),
    }
}
