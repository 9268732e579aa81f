//! Host batch -> device batch: the same columns as tensors, with histories padded to `[B, L]`.

use crate::error::Result;
use longtail_data::HostBatch;
use tch::{Device, Kind, Tensor};

/// A fixed-shape batch on a device. Rows `>= valid` are padding and carry `weight = 0`.
#[derive(Debug)]
pub struct DeviceBatch {
    pub size: usize,
    pub valid: usize,
    /// `[B]` int64 user ids.
    pub user: Tensor,
    /// `[B]` int64 target / candidate item ids.
    pub item: Tensor,
    /// `[B]` float labels (0/1 for CTR; retrieval rows are positives).
    pub label: Tensor,
    /// `[B]` float sample weights (0 on padding rows).
    pub weight: Tensor,
    /// `[B, L]` int64 history ids, oldest first, 0 after the last real item.
    pub hist: Tensor,
    /// `[B, L]` float mask, 1 where `hist` holds a real item.
    pub hist_mask: Tensor,
    /// `[B]` int64 number of real history items.
    pub hist_len: Tensor,
    /// `[B]` float log sampling probability of the target item (logQ correction).
    pub item_logq: Tensor,
    /// `[B]` int64 user activeness group of each row (0 = tail, 1 = body, 2 = head; the dataset's
    /// rule on training data), e.g. for PIN's routing to the plugin of the user's stratum.
    pub user_group: Tensor,
    /// HIM sessions, when the dataset has them (`[data]` with `[sessions]`).
    pub sessions: Option<DeviceSessions>,
}

/// HIM's reorganized inputs on the device: S sessions of the top n positive and negative feedback
/// items by frequency, with their counts (item 0 / count 0 = padding).
#[derive(Debug)]
pub struct DeviceSessions {
    /// `[B, S, n]` int64 positive feedback items, most frequent first.
    pub pos_items: Tensor,
    /// `[B, S, n]` float counts of `pos_items` in their session.
    pub pos_counts: Tensor,
    /// `[B, S, n]` int64 negative feedback items.
    pub neg_items: Tensor,
    /// `[B, S, n]` float counts of `neg_items`.
    pub neg_counts: Tensor,
}

impl DeviceBatch {
    /// Copies a host batch to `device`. The history is padded on the host (one copy per column).
    pub fn from_host(h: &HostBatch, device: Device) -> Result<Self> {
        h.validate()?;
        let b = h.size as i64;
        let l = h.max_hist_len.max(1) as i64;
        let (mut ids, mut mask) = h.padded_history();
        if h.max_hist_len == 0 {
            // Keep a fixed [B, 1] shape so models need no special case for empty histories.
            ids = vec![0; h.size];
            mask = vec![0.0; h.size];
        }
        let lens: Vec<i64> = h.hist_offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let to = |t: Tensor| t.to_device(device);
        Ok(Self {
            size: h.size,
            valid: h.valid,
            user: to(Tensor::from_slice(&h.user)),
            item: to(Tensor::from_slice(&h.item)),
            label: to(Tensor::from_slice(&h.label)),
            weight: to(Tensor::from_slice(&h.weight)),
            hist: to(Tensor::from_slice(&ids).view([b, l])),
            hist_mask: to(Tensor::from_slice(&mask).view([b, l])),
            hist_len: to(Tensor::from_slice(&lens)),
            item_logq: to(Tensor::from_slice(&h.item_logq)),
            user_group: to(Tensor::from_slice(
                &h.user_group
                    .iter()
                    .map(|&g| i64::from(g))
                    .collect::<Vec<i64>>(),
            )),
            sessions: h.sessions.as_ref().map(|sb| {
                let shape = [b, sb.num_sessions as i64, sb.top_n as i64];
                let ids = |v: &[u32]| {
                    let v: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
                    to(Tensor::from_slice(&v).view(shape))
                };
                DeviceSessions {
                    pos_items: ids(&sb.pos_items),
                    pos_counts: to(Tensor::from_slice(&sb.pos_counts).view(shape)),
                    neg_items: ids(&sb.neg_items),
                    neg_counts: to(Tensor::from_slice(&sb.neg_counts).view(shape)),
                }
            }),
        })
    }

    pub fn device(&self) -> Device {
        self.user.device()
    }

    /// `[B]` bool, true on the padding rows (`>= valid`). The explicit row mask: a real row may
    /// carry loss weight 0 (a weighting that drops it from the loss) and must still be every
    /// other row's in-batch negative, so weights never double as the mask.
    pub fn padding_rows(&self) -> Tensor {
        Tensor::arange(self.size as i64, (Kind::Int64, self.device())).ge(self.valid as i64)
    }

    /// Number of real rows as a float tensor, at least 1 (for weighted means).
    pub fn weight_sum(&self) -> Tensor {
        self.weight.sum(Kind::Float).clamp_min(1.0)
    }
}
