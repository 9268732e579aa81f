//! Long-tail exposure of top-K recommendations: tail share and catalogue coverage.

use std::collections::HashSet;

use crate::error::{EvalError, Result};
use crate::report::Metrics;

/// Over every user's first `k` recommendations (`topk[u][..k]`, or the whole list when shorter):
///
/// * `tail_share@K`: share of recommended slots holding tail items (`item_group[item] == 0`), over
///   the slots actually filled (NaN when no slot is filled);
/// * `coverage@K`: distinct recommended items / `num_items`.
///
/// `item_group` is indexed by item id. Errors on `k == 0`, `num_items == 0`,
/// `item_group.len() != num_items` or an item id `>= num_items`.
pub fn tail_share_and_coverage(
    topk: &[Vec<u32>],
    k: usize,
    item_group: &[u8],
    num_items: usize,
) -> Result<Metrics> {
    if k == 0 {
        return Err(EvalError::InvalidArgument("k must be >= 1".into()));
    }
    if num_items == 0 {
        return Err(EvalError::InvalidArgument("num_items must be >= 1".into()));
    }
    crate::error::check_len("item_group (vs num_items)", num_items, item_group.len())?;
    let mut slots = 0usize;
    let mut tail = 0usize;
    let mut seen: HashSet<u32> = HashSet::new();
    for (u, list) in topk.iter().enumerate() {
        for &item in list.iter().take(k) {
            let g = *item_group.get(item as usize).ok_or_else(|| {
                EvalError::InvalidArgument(format!(
                    "user {u}: item id {item} out of range ({num_items} items)"
                ))
            })?;
            slots += 1;
            tail += usize::from(g == 0);
            seen.insert(item);
        }
    }
    let mut m = Metrics::new();
    let share = if slots == 0 {
        f64::NAN
    } else {
        tail as f64 / slots as f64
    };
    m.insert(format!("tail_share@{k}"), share);
    m.insert(
        format!("coverage@{k}"),
        seen.len() as f64 / num_items as f64,
    );
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_case() {
        // items 0..5, tail = {0, 1, 2}.
        let g = [0u8, 0, 0, 1, 1];
        let topk = vec![vec![3, 0, 4], vec![3, 1], vec![]];
        let m = tail_share_and_coverage(&topk, 2, &g, 5).unwrap();
        // slots: 3, 0, 3, 1 -> tail 2 of 4; distinct {0, 1, 3} of 5.
        assert_eq!(m["tail_share@2"], 0.5);
        assert_eq!(m["coverage@2"], 0.6);
        assert!(matches!(
            tail_share_and_coverage(&[vec![5]], 1, &g, 5),
            Err(EvalError::InvalidArgument(_))
        ));
        assert!(matches!(
            tail_share_and_coverage(&topk, 0, &g, 5),
            Err(EvalError::InvalidArgument(_))
        ));
        assert!(tail_share_and_coverage(&[], 3, &g, 5).unwrap()["tail_share@3"].is_nan());
    }
}
