//! cgroup discovery and limits over fake `/sys/fs/cgroup` trees, and budget parsing.

use std::path::Path;

use super::*;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// This machine's layout: v1 controllers, the process in a child of the memory hierarchy,
/// and a v2-style `0::/` line that must not be mistaken for a unified hierarchy.
const V1_PROC: &str = "9:name=systemd:/\n4:memory:/process_api/b3a2\n3:cpuset:/\n0::/\n";

#[test]
fn v1_own_group_and_its_parents_limit() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    write(r, "memory/memory.limit_in_bytes", "9223372036854771712\n");
    write(r, "memory/process_api/b3a2/memory.limit_in_bytes", "9223372036854771712\n");
    write(r, "memory/process_api/b3a2/memory.usage_in_bytes", "564011008\n");
    write(r, "memory/process_api/b3a2/memory.stat", "cache 1\nhierarchical_memory_limit 536870912\nrss 2\n");
    let cg = find_cgroup(V1_PROC, r).expect("v1 memory cgroup");
    assert_eq!(cg, Cgroup::V1(r.join("memory/process_api/b3a2")));
    assert_eq!(cg.limit(), Some(512 << 20), "a parent's limit applies");
    assert_eq!(cg.usage(), Some(564_011_008));

    write(r, "memory/process_api/b3a2/memory.stat", "hierarchical_memory_limit 9223372036854771712\n");
    assert_eq!(cg.limit(), None, "page-rounded i64::MAX is unlimited");
    write(r, "memory/process_api/b3a2/memory.limit_in_bytes", "268435456\n");
    assert_eq!(cg.limit(), Some(256 << 20));
}

#[test]
fn v1_in_a_container_uses_the_mount_root() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    write(r, "memory/memory.limit_in_bytes", "536870912\n");
    let cg = find_cgroup("4:memory:/docker/abcdef\n", r).expect("v1");
    assert_eq!(cg, Cgroup::V1(r.join("memory")));
    assert_eq!(cg.limit(), Some(512 << 20));
    // No memory controller line, or no memory hierarchy mounted: no cgroup.
    assert_eq!(find_cgroup("3:cpuset:/\n", r), None);
    assert_eq!(find_cgroup(V1_PROC, &r.join("nowhere")), None);
}

#[test]
fn v2_smallest_limit_on_the_way_up() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    write(r, "cgroup.controllers", "cpu memory pids\n");
    write(r, "user.slice/memory.max", "402653184\n");
    write(r, "user.slice/ocular.scope/memory.max", "max\n");
    write(r, "user.slice/ocular.scope/memory.current", "123456\n");
    let cg = find_cgroup("0::/user.slice/ocular.scope\n", r).expect("v2");
    assert_eq!(cg, Cgroup::V2(r.join("user.slice/ocular.scope")));
    assert_eq!(cg.limit(), Some(384 << 20), "the parent's 384 MiB bounds an unlimited child");
    assert_eq!(cg.usage(), Some(123_456));
    write(r, "user.slice/memory.max", "max\n");
    assert_eq!(cg.limit(), None);
}

#[test]
fn budget_sizes_parse_with_units() {
    assert_eq!(parse_budget("400MiB"), Ok(BudgetSetting::Bytes(400 << 20)));
    assert_eq!(parse_budget("1.5GiB"), Ok(BudgetSetting::Bytes(3 << 29)));
    assert_eq!(parse_budget("512M"), Ok(BudgetSetting::Bytes(512 << 20)));
    assert_eq!(parse_budget("500MB"), Ok(BudgetSetting::Bytes(500_000_000)));
    assert_eq!(parse_budget(" 1048576 "), Ok(BudgetSetting::Bytes(1 << 20)));
    assert_eq!(parse_budget("auto"), Ok(BudgetSetting::Auto));
    for off in ["off", "OFF", "0", "none"] {
        assert_eq!(parse_budget(off), Ok(BudgetSetting::Off), "{off}");
    }
    for bad in ["", "lots", "12 parsecs", "-5MiB", "0.0000001B"] {
        assert!(parse_budget(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn cgroup_budget_keeps_a_margin() {
    assert_eq!(budget_from_cgroup_limit(512 << 20), (512 << 20) - (512 << 20) / 100 * 10);
    assert_eq!(budget_from_cgroup_limit(256 << 20), 224 << 20, "32 MiB floor");
    assert_eq!(budget_from_cgroup_limit(16 << 20), 0);
}
