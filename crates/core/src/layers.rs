//! Building blocks shared by models: MLP, masked pooling, masked softmax.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// A feed-forward stack `in -> hidden... -> out` with ReLU and optional dropout between layers.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
    dropout: f64,
}

impl Mlp {
    /// Layer `i` is stored under `path / "i"`, so checkpoints read as `mlp.0.weight`, ...
    pub fn new(path: &nn::Path, in_dim: i64, hidden: &[i64], out_dim: i64, dropout: f64) -> Self {
        let mut dims = vec![in_dim];
        dims.extend_from_slice(hidden);
        dims.push(out_dim);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| nn::linear(path / i, w[0], w[1], Default::default()))
            .collect();
        Self { layers, dropout }
    }

    /// The last layer has no activation (it produces logits or representations).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let n = self.layers.len();
        let mut h = x.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i + 1 < n {
                h = h.relu();
                if self.dropout > 0.0 {
                    h = h.dropout(self.dropout, train);
                }
            }
        }
        h
    }
}

/// Sum of `x [B, L, D]` over positions where `mask [B, L]` is 1.
pub fn masked_sum(x: &Tensor, mask: &Tensor) -> Tensor {
    (x * mask.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
}

/// Mean of `x [B, L, D]` over masked positions; rows with an empty mask give zeros.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Tensor {
    let n = mask.sum_dim_intlist(1, true, Kind::Float).clamp_min(1.0);
    masked_sum(x, mask) / n
}

/// Softmax of `scores` along `dim` ignoring positions where `mask` is 0. A row whose mask is all 0
/// gets all-zero weights instead of NaN.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, dim: i64) -> Tensor {
    let neg = scores.masked_fill(&mask.eq(0.0), -1e9);
    neg.softmax(dim, Kind::Float) * mask
}

/// The id-embedding config every model uses: id 0 is padding (a zero row that gets no gradient),
/// weights from N(0, `std`) (small, as in the papers' TensorFlow code; libtorch's N(0, 1) default
/// overfits sparse ids).
pub fn id_embedding_config(std: f64) -> nn::EmbeddingConfig {
    nn::EmbeddingConfig {
        padding_idx: 0,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_ops_ignore_padding() {
        let x = Tensor::from_slice(&[1.0f32, 2.0, 100.0, 3.0, 4.0, 5.0]).view([2, 3, 1]);
        let m = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0]).view([2, 3]);
        let s: Vec<f32> = Vec::try_from(masked_sum(&x, &m).view([-1])).unwrap();
        assert_eq!(s, vec![3.0, 0.0]);
        let mean: Vec<f32> = Vec::try_from(masked_mean(&x, &m).view([-1])).unwrap();
        assert_eq!(mean, vec![1.5, 0.0]);
        let p: Vec<f32> =
            Vec::try_from(masked_softmax(&x.squeeze_dim(-1), &m, 1).view([-1])).unwrap();
        assert!((p[0] - 0.268_941_4).abs() < 1e-5 && p[2] == 0.0, "{p:?}");
        assert!(p[3..].iter().all(|v| *v == 0.0));
    }
}
