//! Process memory as the kernel sees it (RSS, anonymous RSS, the cgroup limit and usage), and
//! the memory budget that admission control enforces (see `ocular_models::budget`).
//!
//! Read from `/proc/self/status` and the cgroup files on each call (microseconds), so health,
//! metrics and admission always use the truth rather than an allocator's estimate.
//!
//! The cgroup is the process's own, as named in `/proc/self/cgroup`: the v2 line `0::PATH`
//! when `/sys/fs/cgroup` is the unified hierarchy, else the v1 `memory` controller's line.
//! Limits set on a parent group apply too (v2: the smallest `memory.max` on the way up; v1:
//! `hierarchical_memory_limit`). "max" (v2) and v1's page-rounded `i64::MAX` mean no limit.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The process's memory in `/health?verbose=1`.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct MemoryUsage {
    pub rss_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub cgroup_limit_bytes: Option<u64>,
    /// What the cgroup is charged now (page cache included, which the kernel can reclaim).
    pub cgroup_usage_bytes: Option<u64>,
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Resident set size of this process.
pub fn rss() -> Option<u64> {
    status_kb("VmRSS:")
}

/// What admission counts as "in use": anonymous resident memory (heap, model weights, the
/// allocator's free lists), falling back to RSS. File-backed pages (the binary, the ONNX
/// Runtime library) are clean and the kernel reclaims them before it kills anything, so
/// counting them would refuse requests for memory that is there.
pub fn in_use() -> Option<u64> {
    status_kb("RssAnon:").or_else(rss)
}

/// Anything at or above 2^60 is "unlimited" (v1 reports `i64::MAX` rounded down to a page).
fn parse_limit(raw: &str) -> Option<u64> {
    raw.trim().parse::<u64>().ok().filter(|&b| b < (1 << 60))
}

/// This process's memory cgroup: its directory and hierarchy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    V2(PathBuf),
    V1(PathBuf),
}

/// Finds the memory cgroup directory from `/proc/self/cgroup`'s text under `root`
/// (`/sys/fs/cgroup`). In a container the named path may not exist under its own mount (the
/// group is the mount's root), so the root is used then.
pub fn find_cgroup(proc_self_cgroup: &str, root: &Path) -> Option<Cgroup> {
    let under = |base: PathBuf, path: &str| {
        let dir = base.join(path.trim_start_matches('/'));
        if dir.is_dir() { dir } else { base }
    };
    if root.join("cgroup.controllers").is_file() {
        let path = proc_self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
        return Some(Cgroup::V2(under(root.to_path_buf(), path)));
    }
    let path = proc_self_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "memory").then_some(path.trim())
    })?;
    let base = root.join("memory");
    base.is_dir().then(|| Cgroup::V1(under(base, path)))
}

impl Cgroup {
    /// The effective limit, parents included; `None` when unlimited.
    pub fn limit(&self) -> Option<u64> {
        match self {
            Cgroup::V2(dir) => {
                // Walk up while the directory still has a memory.max (the root has none).
                let limits = dir
                    .ancestors()
                    .map_while(|d| std::fs::read_to_string(d.join("memory.max")).ok())
                    .filter_map(|raw| parse_limit(&raw));
                limits.min()
            }
            Cgroup::V1(dir) => {
                let stat = std::fs::read_to_string(dir.join("memory.stat")).ok();
                let hierarchical = stat.as_deref().and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix("hierarchical_memory_limit ")).and_then(parse_limit)
                });
                let own = std::fs::read_to_string(dir.join("memory.limit_in_bytes")).ok();
                hierarchical.into_iter().chain(own.as_deref().and_then(parse_limit)).min()
            }
        }
    }

    pub fn usage(&self) -> Option<u64> {
        let file = match self {
            Cgroup::V2(dir) => dir.join("memory.current"),
            Cgroup::V1(dir) => dir.join("memory.usage_in_bytes"),
        };
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }
}

/// This process's memory cgroup, if the kernel has one mounted.
pub fn own_cgroup() -> Option<Cgroup> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    find_cgroup(&text, Path::new("/sys/fs/cgroup"))
}

/// The memory limit of this process's cgroup, if any.
pub fn cgroup_limit() -> Option<u64> {
    own_cgroup()?.limit()
}

pub fn usage() -> MemoryUsage {
    let cgroup = own_cgroup();
    MemoryUsage {
        rss_bytes: rss(),
        anon_bytes: status_kb("RssAnon:"),
        cgroup_limit_bytes: cgroup.as_ref().and_then(Cgroup::limit),
        cgroup_usage_bytes: cgroup.as_ref().and_then(Cgroup::usage),
    }
}

/// `--memory-budget`: `auto` (from the cgroup limit), `off`/`0`, or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetSetting {
    Auto,
    Off,
    Bytes(u64),
}

/// Parses `auto`, `off`, `0`, `123456`, `400MiB`, `1.5GiB`, `512MB`, `2G`. Binary suffixes
/// (KiB, MiB, GiB, and K, M, G as in cgroup files and `docker --memory`) are powers of 1024; KB,
/// MB, GB are powers of 1000.
pub fn parse_budget(s: &str) -> Result<BudgetSetting, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "auto" => return Ok(BudgetSetting::Auto),
        "off" | "none" | "0" => return Ok(BudgetSetting::Off),
        _ => {}
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown unit {other:?} in memory budget {s:?} (use e.g. 400MiB, 1GiB, off)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("memory budget {s:?} is not a size (e.g. 400MiB, off)"))?;
    let bytes = value * unit_bytes as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("memory budget {s:?} is not a positive size"));
    }
    Ok(BudgetSetting::Bytes(bytes as u64))
}

/// Share of a cgroup limit kept out of the budget, and its floor. The budget only sees RSS and
/// estimates; outside it are kernel memory charged to the group (socket buffers of queued
/// uploads, page tables, thread stacks), page cache the kernel must reclaim under pressure
/// rather than OOM-kill for, and estimate error (measured within ~15%). 10% with a 32 MiB floor
/// keeps a 512 MiB group at a 461 MiB budget and a 256 MiB group at 224 MiB.
pub const CGROUP_MARGIN_PERCENT: u64 = 10;
pub const CGROUP_MARGIN_MIN: u64 = 32 << 20;

/// The budget from a cgroup limit: the limit minus the margin.
pub fn budget_from_cgroup_limit(limit: u64) -> u64 {
    limit.saturating_sub((limit / 100 * CGROUP_MARGIN_PERCENT).max(CGROUP_MARGIN_MIN))
}

/// The effective budget for a setting: `(bytes, source)`. Without a cgroup limit `auto` means
/// no budget: the host's RAM is shared with other processes, so a figure derived from it would
/// promise memory that may not be there; set one explicitly instead.
pub fn resolve_budget(setting: BudgetSetting) -> (Option<u64>, ocular_models::LimitSource) {
    use ocular_models::LimitSource as S;
    match setting {
        BudgetSetting::Off => (None, S::None),
        BudgetSetting::Bytes(b) => (Some(b), S::Config),
        BudgetSetting::Auto => match cgroup_limit() {
            Some(limit) => (Some(budget_from_cgroup_limit(limit)), S::Cgroup),
            None => (None, S::None),
        },
    }
}

/// The process's budget for admission control, counting [`in_use`].
pub fn budget(setting: BudgetSetting) -> ocular_models::MemoryBudget {
    let (limit, source) = resolve_budget(setting);
    ocular_models::MemoryBudget::new(limit, source, std::sync::Arc::new(in_use))
}

/// How long the process must run no inference before [`spawn_idle_trim`] returns free pages.
pub const IDLE_TRIM_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Under load the heap keeps the pages one request freed for the next one (that is what ends
/// the page-fault storm, see [`tune_allocator`]); once no inference has run for
/// [`IDLE_TRIM_AFTER`], a thread hands those free pages back to the kernel (`malloc_trim`), so
/// an idle server holds what its models and catalog need and no more. The thread wakes once
/// per [`IDLE_TRIM_AFTER`] and trims at most once per quiet spell.
pub fn spawn_idle_trim() -> std::io::Result<()> {
    std::thread::Builder::new().name("idle-trim".into()).spawn(|| {
        let mut seen = ocular_models::lanes::inference_runs();
        let mut trimmed = seen;
        loop {
            std::thread::sleep(IDLE_TRIM_AFTER);
            let now = ocular_models::lanes::inference_runs();
            if now == seen && now != trimmed {
                ocular_models::session::release_free_memory();
                trimmed = now;
            }
            seen = now;
        }
    })?;
    Ok(())
}

/// Allocations at least this large are mapped by glibc and unmapped when freed; smaller ones
/// come from the heap and are reused. 8 MiB holds the largest activation of the models served
/// (sklesion's 124×124×128 floats, 7.9 MB), so inference stops faulting (measured: 0 faults per
/// run, `ocular-models/examples/bench_bare.rs`), while photo-sized buffers (a 12 MP decode is
/// 36 MB) stay mapped and go back at once; 32 MiB (glibc's maximum) kept more of a 12 MP burst
/// resident (docs/BENCHMARKS.md, "Serving engine"). The models' batch caps are derived from the
/// same figure (`ocular_models::session::HEAP_BLOCK_BYTES`), so a batched run stays on the heap.
pub const MMAP_THRESHOLD: i32 = ocular_models::session::HEAP_BLOCK_BYTES as i32;

/// Tunes glibc's malloc to give memory back; call first thing in `main`, before threads start.
/// Measured under 20 analyses of a 12 MP photo (docs/DEPLOY.md, "Memory"): RSS 10 s after the
/// burst 586 → 244 MiB, peak 766 → 440 MiB, latency no worse. Three settings:
/// - one arena instead of 8 per core: each thread that ever allocated (tokio workers,
///   ONNX Runtime's pool, blocking threads) otherwise gets its own arena, whose freed pages
///   stay with it. Two arenas were enough while activations were mapped; once they live on the
///   heap (below), whichever request thread runs an inference leaves its activations' pages in
///   its own arena, so two arenas held two copies: one arena measured 649 → 606 MiB peak on
///   the 12 MP burst and fewer faults per request (photo search 602 → 83, analysis 179 → 50;
///   `bench/faults.sh`, docs/BENCHMARKS.md). With inference on a pool of at most one thread per
///   core, contention on the one arena's lock was not visible in the p50s (measured on a loaded
///   machine, so not proven absent);
/// - a fixed 32 MiB trim threshold, which also turns off glibc's *dynamic* mmap threshold:
///   otherwise, after the first 36 MB decode buffer is freed, the threshold climbs to 32 MiB and
///   later large buffers come from the heap and stay there;
/// - a fixed mmap threshold of [`MMAP_THRESHOLD`]: fixing the trim threshold also froze the mmap
///   threshold at glibc's 128 KiB, so with ONNX Runtime's arena off every activation buffer of
///   every inference was mapped, faulted in page by page and unmapped again (~2,400 minor faults
///   per photo embedding, ~9,900 per analysis). Below the threshold those buffers come from the
///   heap and the next request reuses the pages; the free pages the heap keeps under load go
///   back when the process goes idle ([`spawn_idle_trim`]) or when the memory budget needs them
///   (its `malloc_trim` before refusing).
///
/// ONNX Runtime allocates through the same malloc, so this covers its activations too. The
/// `MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_` environment
/// variables still win (`MALLOC_MMAP_THRESHOLD_=131072` restores the behaviour before).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        const M_ARENA_MAX: i32 = -8;
        for (param, value, env) in [
            (M_ARENA_MAX, 1, "MALLOC_ARENA_MAX"),
            (M_TRIM_THRESHOLD, 32 << 20, "MALLOC_TRIM_THRESHOLD_"),
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
        ] {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only sets glibc's tuning parameters; any value is accepted.
                unsafe {
                    mallopt(param, value);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
