//! Loss kernels. Each returns an unweighted scalar; the trainer applies the config's weights.

use crate::batch::DeviceBatch;
use tch::{Kind, Reduction, Tensor};

/// Binary cross-entropy on logits `[B]`, averaged over real rows (padding rows have weight 0).
pub fn bce_with_logits(logits: &Tensor, batch: &DeviceBatch) -> Tensor {
    let per = logits.binary_cross_entropy_with_logits::<Tensor>(
        &batch.label,
        None,
        None,
        Reduction::None,
    );
    (per * &batch.weight).sum(Kind::Float) / batch.weight_sum()
}

/// In-batch sampled softmax with logQ correction (IDW eqs. 1-3): row `i`'s positive is column
/// `i`; every other real item in the batch is a negative. `logits [B, B]` are raw affinities;
/// `log(p(y))` of each column's item is subtracted, and padding columns are masked out.
pub fn in_batch_softmax(logits: &Tensor, batch: &DeviceBatch, logq_correction: bool) -> Tensor {
    let b = logits.size()[0];
    let l = if logq_correction {
        logits - batch.item_logq.unsqueeze(0)
    } else {
        logits.shallow_clone()
    };
    let pad_col = batch.weight.eq(0.0).unsqueeze(0);
    let l = l.masked_fill(&pad_col, -1e9);
    let target = Tensor::arange(b, (Kind::Int64, logits.device()));
    let per = l
        .log_softmax(-1, Kind::Float)
        .gather(1, &target.unsqueeze(1), false)
        .squeeze_dim(1)
        .neg();
    (per * &batch.weight).sum(Kind::Float) / batch.weight_sum()
}
