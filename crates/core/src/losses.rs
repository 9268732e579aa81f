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
/// `log(p(y))` of each column's item is subtracted, padding columns (rows `>= valid`, whatever
/// their weight: a real row of weight 0 stays a negative) are masked out, and so are
/// other columns holding the row's own positive item ("accidental hits": a popular item appearing
/// twice in a batch must not be pushed away from a user who clicked it).
pub fn in_batch_softmax(logits: &Tensor, batch: &DeviceBatch, logq_correction: bool) -> Tensor {
    let b = logits.size()[0];
    let l = if logq_correction {
        logits - batch.item_logq.unsqueeze(0)
    } else {
        logits.shallow_clone()
    };
    let pad_col = batch.padding_rows().unsqueeze(0);
    let eye = Tensor::eye(b, (Kind::Bool, logits.device()));
    let hit = batch
        .item
        .unsqueeze(1)
        .eq_tensor(&batch.item.unsqueeze(0))
        .logical_and(&eye.logical_not());
    let l = l.masked_fill(&pad_col, -1e9).masked_fill(&hit, -1e9);
    let target = Tensor::arange(b, (Kind::Int64, logits.device()));
    let per = l
        .log_softmax(-1, Kind::Float)
        .gather(1, &target.unsqueeze(1), false)
        .squeeze_dim(1)
        .neg();
    (per * &batch.weight).sum(Kind::Float) / batch.weight_sum()
}

/// IDW eq. 4: the score of user `b` for candidate `n` is `z_b^T g_n` with
/// `z_b = Σ_m w_m z_b^(m)`, `w = softmax_m(z_b^(m)T g_n)`: each candidate picks its own mix of
/// the user's `K` interests. `users [B, K, D]`, `items [N, D]` (shared candidates) or
/// `[B, N, D]` (each row its own candidates) -> `[B, N]`. With `K = 1` this is the plain dot
/// product.
pub fn candidate_aware_scores(users: &Tensor, items: &Tensor) -> Tensor {
    // a[b, k, n] = z_b^(k) . g_n, as the product lays it out. The softmax runs over k (dim 1)
    // in this layout: transposed to put k last, a softmax over K = 5 values per [B, N] cell
    // was most of a twotower step's softmax time (and the transpose a copy).
    let a = users.matmul(&items.transpose(-1, -2));
    if a.size()[1] == 1 {
        // One interest: the weight is exactly 1, the score the plain dot product.
        return a.squeeze_dim(1);
    }
    let w = a.softmax(1, Kind::Float);
    (w * a).sum_dim_intlist(1, false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use longtail_data::HostBatch;
    use tch::Device;

    fn batch(items: Vec<i64>) -> DeviceBatch {
        let n = items.len();
        let h = HostBatch::from_dense(vec![1; n], items, vec![1.0; n], &vec![vec![1]; n]).unwrap();
        DeviceBatch::from_host(&h, Device::Cpu).unwrap()
    }

    #[test]
    fn in_batch_softmax_matches_hand_value() {
        // Two distinct items, zero logits: each row is a 2-way softmax, loss = ln 2.
        let b = batch(vec![1, 2]);
        let l = in_batch_softmax(
            &Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)),
            &b,
            false,
        );
        assert!((l.double_value(&[]) - 2f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn candidate_aware_scores_by_hand() {
        // One user with interests z1 = (1, 0), z2 = (0, 2); candidate g = (1, 1):
        // a = (1, 2), w = softmax(a) = (0.268941, 0.731059), score = Σ w_k a_k = 1.731059.
        // Candidate (1, 0): a = (1, 0), w = (0.731059, 0.268941), score = 0.731059.
        let u = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0]).view([1, 2, 2]);
        let g = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]).view([2, 2]);
        let s: Vec<f32> = Vec::try_from(candidate_aware_scores(&u, &g).view([-1])).unwrap();
        assert!(
            (s[0] - 1.731_058_6).abs() < 1e-6 && (s[1] - 0.731_058_6).abs() < 1e-6,
            "{s:?}"
        );
        // One interest: the dot product.
        let u1 = Tensor::from_slice(&[3.0f32, -1.0]).view([1, 1, 2]);
        let s1: Vec<f32> = Vec::try_from(candidate_aware_scores(&u1, &g).view([-1])).unwrap();
        assert_eq!(s1, vec![2.0, 3.0]);
        // Per-row candidates [B, N, D] give the same scores as shared ones.
        let per_row: Vec<f32> =
            Vec::try_from(candidate_aware_scores(&u, &g.unsqueeze(0)).view([-1])).unwrap();
        assert!((per_row[0] - s[0]).abs() < 1e-7 && (per_row[1] - s[1]).abs() < 1e-7);
    }

    /// The k-major layout computes eq. 4 as written (a softmax over the last axis of
    /// `[B, N, K]`), values and gradients, for shared and per-row candidates.
    #[test]
    fn candidate_aware_scores_match_the_written_formula() {
        let written = |u: &Tensor, g: &Tensor| {
            let a = u.matmul(&g.transpose(-1, -2)).transpose(1, 2);
            (a.softmax(-1, Kind::Float) * &a).sum_dim_intlist(-1, false, Kind::Float)
        };
        tch::manual_seed(11);
        for items in [vec![7i64, 4], vec![5, 7, 4]] {
            let u = Tensor::randn([5, 3, 4], (Kind::Float, Device::Cpu));
            let g = Tensor::randn(&items, (Kind::Float, Device::Cpu));
            let grads = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
                let (ug, gg) = (
                    u.copy().set_requires_grad(true),
                    g.copy().set_requires_grad(true),
                );
                let s = f(&ug, &gg);
                (&s * &s).sum(Kind::Float).backward();
                (s.detach(), ug.grad(), gg.grad())
            };
            let (s1, u1, g1) = grads(&candidate_aware_scores);
            let (s2, u2, g2) = grads(&written);
            for (a, b) in [(&s1, &s2), (&u1, &u2), (&g1, &g2)] {
                let scale = b.abs().max().double_value(&[]).max(1.0);
                let d = (a - b).abs().max().double_value(&[]) / scale;
                assert!(d < 1e-6, "{items:?}: differ by {d} (relative)");
            }
        }
    }

    #[test]
    fn accidental_hits_are_masked() {
        // Rows 0 and 1 share item 5: each sees only itself and item 7, so loss = ln 2, not ln 3.
        let b = batch(vec![5, 5, 7]);
        let l = in_batch_softmax(
            &Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)),
            &b,
            false,
        );
        let expect = (2.0 * 2f64.ln() + 3f64.ln()) / 3.0;
        assert!(
            (l.double_value(&[]) - expect).abs() < 1e-6,
            "{}",
            l.double_value(&[])
        );
    }

    /// A real row with loss weight 0 adds nothing to the loss but stays every other row's
    /// negative; a padding row (`>= valid`) is nobody's negative. Zero logits: a row's loss is
    /// ln(number of columns it sees).
    #[test]
    fn zero_weight_rows_stay_negatives_and_padding_does_not() {
        let mut h = HostBatch::from_dense(
            vec![1; 4],
            vec![1, 2, 3, 1],
            vec![1.0; 4],
            &vec![vec![1]; 4],
        )
        .unwrap();
        // Row 1 is real with weight 0; row 3 is padding (it repeats row 0, as the engine pads).
        h.weight = vec![1.0, 0.0, 1.0, 0.0];
        h.valid = 3;
        let b = DeviceBatch::from_host(&h, Device::Cpu).unwrap();
        let padding: Vec<bool> = Vec::try_from(b.padding_rows()).unwrap();
        assert_eq!(padding, [false, false, false, true]);
        let l = in_batch_softmax(
            &Tensor::zeros([4, 4], (Kind::Float, Device::Cpu)),
            &b,
            false,
        )
        .double_value(&[]);
        // Rows 0 and 2 each see the three real columns (items 1, 2, 3): ln 3 each, mean ln 3.
        // Had row 1's zero weight masked its column, they would see two: ln 2.
        assert!((l - 3f64.ln()).abs() < 1e-6, "{l}");
    }

    #[test]
    fn bce_ignores_padding_rows() {
        let mut h =
            HostBatch::from_dense(vec![1, 1], vec![1, 2], vec![1.0, 0.0], &[vec![1], vec![1]])
                .unwrap();
        h.weight = vec![1.0, 0.0];
        h.valid = 1;
        let b = DeviceBatch::from_host(&h, Device::Cpu).unwrap();
        let logits = Tensor::from_slice(&[0.0f32, 100.0]);
        let l = bce_with_logits(&logits, &b).double_value(&[]);
        assert!((l - 2f64.ln()).abs() < 1e-6, "{l}");
    }
}
