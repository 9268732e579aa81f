//! Memory guards: a size that comes from a config (negatives per positive, a batch size, a
//! sequence length) is checked against the memory this machine can give before anything that
//! large is allocated, so a typo is a one-line error naming the key instead of an abort or a
//! machine that swaps for an hour.

use crate::error::{DataError, Result};

/// The share of available memory one allocation plan may take.
const SHARE: f64 = 0.8;

/// Bytes this process can still allocate: `MemAvailable` from `/proc/meminfo`, lowered by a
/// cgroup v2 limit when one is set. `None` where neither can be read (then nothing is refused).
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = || -> Option<u64> {
        let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
        let max: u64 = max.trim().parse().ok()?; // "max" = no limit
        let cur: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(max.saturating_sub(cur))
    };
    match (meminfo, cgroup()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `n` bytes in the unit that reads best.
pub fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Fails with an error naming `key` when `bytes` (what `what` needs, an estimate) exceeds the
/// share of available memory one plan may take.
pub fn check_fits(bytes: f64, key: &str, what: &str) -> Result<()> {
    check_fits_in(bytes, available_bytes(), key, what)
}

fn check_fits_in(bytes: f64, available: Option<u64>, key: &str, what: &str) -> Result<()> {
    let Some(avail) = available else {
        return Ok(());
    };
    if bytes.is_finite() && bytes <= SHARE * avail as f64 {
        return Ok(());
    }
    Err(DataError::config(
        key,
        format!(
            "{what} needs about {} but this machine has {} available; lower it",
            if bytes.is_finite() {
                human(bytes)
            } else {
                "more than can be counted".into()
            },
            human(avail as f64)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_does_not_fit_and_names_the_key() {
        let gib = 1u64 << 30;
        assert!(check_fits_in(1e9, Some(4 * gib), "k", "x").is_ok());
        let e = check_fits_in(1e12, Some(4 * gib), "samples.neg_per_pos", "the samples")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("samples.neg_per_pos") && e.contains("931.3 GiB") && e.contains("4.0 GiB"),
            "{e}"
        );
        assert!(check_fits_in(f64::INFINITY, Some(gib), "k", "x").is_err());
        // Unknown memory: nothing is refused.
        assert!(check_fits_in(1e18, None, "k", "x").is_ok());
        assert!(available_bytes().is_none_or(|b| b > 0));
    }
}
