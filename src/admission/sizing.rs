//! The default memory budget, from the memory the process may use (container limit, else RAM),
//! and sizes in bytes as people write and read them.

use std::path::{Path, PathBuf};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Reads a size in bytes: a plain number, or a number (decimals allowed) with a unit: binary
/// `KiB`, `MiB`, `GiB`, `TiB` (also as Kubernetes writes them: `Ki`, `Mi`, `Gi`, `Ti`) or decimal
/// `kB`, `MB`, `GB`, `TB` (`k`, `M`, `G`, `T`); `B` alone is bytes. Units are case-insensitive
/// except the Kubernetes one-letter decimal ones (`M` is 10^6, `m` is refused).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let value: f64 = num.parse().map_err(|_| format!("{text:?} is not a size: expected e.g. 1073741824, 1GiB or 512MiB"))?;
    let scale: u64 = match unit {
        "" => 1,
        "k" | "K" => 1000,
        "M" => 1000 * 1000,
        "G" => 1000 * 1000 * 1000,
        "T" => 1000u64.pow(4),
        u => match u.to_ascii_lowercase().as_str() {
            "b" => 1,
            "kib" | "ki" => KIB,
            "mib" | "mi" => MIB,
            "gib" | "gi" => GIB,
            "tib" | "ti" => 1024 * GIB,
            "kb" => 1000,
            "mb" => 1000 * 1000,
            "gb" => 1000 * 1000 * 1000,
            "tb" => 1000u64.pow(4),
            _ => return Err(format!("{text:?}: unknown unit {u:?} (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)")),
        },
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Bytes as people read them: "1.0 GiB", "512 MiB", "96.5 KiB".
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.0} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

/// Where the memory the process may use was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    /// "cgroup v2 memory.max", "cgroup v1 memory.limit_in_bytes".
    pub source: &'static str,
}

/// The default budget when no container limit is found: this fraction of the machine's RAM...
pub const RAM_FRACTION: u64 = 4;
/// ...but at most this much: without a container limit the service shares the machine. With the
/// default pool of 2 this still lets two 48-megapixel photos be worked on at once, and the
/// process (about 300 MiB at rest) stays under 2 GiB.
pub const RAM_DEFAULT_CAP: u64 = 3 * GIB / 2;
/// Used when neither a container limit nor /proc/meminfo can be read.
pub const FALLBACK_BUDGET: u64 = GIB;

/// The budget in use and how it was chosen (for `/info` and the start-up log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetChoice {
    pub bytes: u64,
    pub source: String,
}

/// The default memory budget: half the container's memory limit (cgroup v2 `memory.max` or
/// cgroup v1 `memory.limit_in_bytes` of the process's cgroup or an ancestor) when there is one,
/// the other half left for the process itself (models, sessions, allocator slack); else a
/// quarter of RAM (`MemTotal`), at most 1.5 GiB; else 1 GiB.
pub fn default_budget(limit: Option<&MemoryLimit>, mem_total: Option<u64>) -> BudgetChoice {
    match (limit, mem_total) {
        (Some(l), _) => {
            BudgetChoice { bytes: l.bytes / 2, source: format!("half the container memory limit ({} {})", l.source, human_bytes(l.bytes)) }
        }
        (None, Some(total)) => BudgetChoice {
            bytes: (total / RAM_FRACTION).min(RAM_DEFAULT_CAP),
            source: format!("a quarter of RAM (MemTotal {}), at most {}", human_bytes(total), human_bytes(RAM_DEFAULT_CAP)),
        },
        (None, None) => BudgetChoice { bytes: FALLBACK_BUDGET, source: "no memory limit or RAM size found".into() },
    }
}

/// The budget for `--memory-budget` (None: the default, from this machine).
pub fn choose_budget(explicit: Option<u64>) -> BudgetChoice {
    match explicit {
        Some(bytes) => BudgetChoice { bytes, source: "--memory-budget / COLORIZER_MEMORY_BUDGET".into() },
        None => {
            let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_total(&m));
            let read = |p: &Path| std::fs::read_to_string(p).ok();
            let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let limit = cgroup_limit(&cgroup, Path::new("/sys/fs/cgroup"), read, mem_total);
            default_budget(limit.as_ref(), mem_total)
        }
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// The memory limit of the process's cgroup (the smallest along its path up to the root), from
/// the text of /proc/self/cgroup and the cgroup file system mounted at `root`. "max" and the
/// huge numbers cgroup v1 writes for no limit, or a limit at or above `mem_total`, are no limit.
/// In a container the process's path is often not visible under `root` (a cgroup namespace
/// shows its own cgroup as the root); the root's own file is read too.
pub fn cgroup_limit(
    proc_self_cgroup: &str,
    root: &Path,
    read: impl Fn(&Path) -> Option<String>,
    mem_total: Option<u64>,
) -> Option<MemoryLimit> {
    let mut best: Option<MemoryLimit> = None;
    let mut consider = |bytes: u64, source: &'static str| {
        if bytes >= 1 << 60 || mem_total.is_some_and(|t| bytes >= t) {
            return;
        }
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(MemoryLimit { bytes, source });
        }
    };
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (dir, file, source) = if id == "0" && controllers.is_empty() {
            (root.to_path_buf(), "memory.max", "cgroup v2 memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes", "cgroup v1 memory.limit_in_bytes")
        } else {
            continue;
        };
        for d in ancestors(&dir, path) {
            if let Some(bytes) = read(&d.join(file)).and_then(|v| v.trim().parse::<u64>().ok()) {
                consider(bytes, source);
            }
        }
    }
    best
}

/// `base/path`, its parents up to `base`, and `base` itself.
fn ancestors(base: &Path, path: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut p = PathBuf::from(path.trim_start_matches('/'));
    loop {
        out.push(base.join(&p));
        if !p.pop() {
            break;
        }
    }
    if out.last().map(|l| l.as_path()) != Some(base) {
        out.push(base.to_path_buf());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        for (text, want) in [
            ("1073741824", GIB),
            ("1GiB", GIB),
            ("1 GiB", GIB),
            ("1gib", GIB),
            ("1Gi", GIB),
            ("512MiB", 512 * MIB),
            ("512Mi", 512 * MIB),
            ("1.5GiB", 3 * GIB / 2),
            ("64KiB", 64 * KIB),
            ("2GB", 2_000_000_000),
            ("2G", 2_000_000_000),
            ("500M", 500_000_000),
            ("10B", 10),
        ] {
            assert_eq!(parse_bytes(text), Ok(want), "{text}");
        }
        for bad in ["", "GiB", "1 parsec", "-1GiB", "1m", "1e99GiB", "1.2.3"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    fn fs(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let map: HashMap<PathBuf, String> = files.iter().map(|(p, v)| (PathBuf::from(p), v.to_string())).collect();
        move |p: &Path| map.get(p).cloned()
    }

    #[test]
    fn the_cgroup_limit_is_found_for_v1_and_v2() {
        let root = Path::new("/sys/fs/cgroup");
        let total = Some(32 * GIB);
        // cgroup v2 inside a container: the namespace root holds the limit.
        let v2 = fs(&[("/sys/fs/cgroup/memory.max", "4294967296\n")]);
        assert_eq!(cgroup_limit("0::/\n", root, v2, total), Some(MemoryLimit { bytes: 4 * GIB, source: "cgroup v2 memory.max" }));
        // cgroup v2 on a host: the process's own cgroup, or an ancestor's, whichever is smaller.
        let v2 = fs(&[
            ("/sys/fs/cgroup/system.slice/app.service/memory.max", "max\n"),
            ("/sys/fs/cgroup/system.slice/memory.max", "2147483648\n"),
        ]);
        assert_eq!(cgroup_limit("0::/system.slice/app.service\n", root, v2, total).unwrap().bytes, 2 * GIB);
        // No limit anywhere.
        let none = fs(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_limit("0::/\n", root, none, total), None);
        // cgroup v1, with the numbers it writes for no limit.
        let v1 = fs(&[
            ("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1073741824\n"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
        ]);
        let cg = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        assert_eq!(cgroup_limit(cg, root, v1, total), Some(MemoryLimit { bytes: GIB, source: "cgroup v1 memory.limit_in_bytes" }));
        let unlimited = fs(&[("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")]);
        assert_eq!(cgroup_limit("4:memory:/x\n", root, unlimited, total), None);
        // A limit above the machine's RAM is no limit.
        let big = fs(&[("/sys/fs/cgroup/memory.max", "68719476736\n")]);
        assert_eq!(cgroup_limit("0::/\n", root, big, total), None);
    }

    #[test]
    fn the_default_budget_is_half_the_limit_or_a_capped_quarter_of_ram() {
        let l = MemoryLimit { bytes: 4 * GIB, source: "cgroup v2 memory.max" };
        assert_eq!(default_budget(Some(&l), Some(64 * GIB)).bytes, 2 * GIB);
        assert_eq!(default_budget(None, Some(2 * GIB)).bytes, 512 * MIB);
        assert_eq!(default_budget(None, Some(64 * GIB)).bytes, 3 * GIB / 2);
        assert_eq!(default_budget(None, None).bytes, FALLBACK_BUDGET);
        assert!(default_budget(Some(&l), None).source.contains("4.0 GiB"));
        assert_eq!(mem_total("MemTotal:       24684092 kB\nMemFree: 1 kB\n"), Some(24684092 * 1024));
    }
}
