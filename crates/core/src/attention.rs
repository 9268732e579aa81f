//! Multi-head self-attention and a post-LayerNorm transformer encoder over padded histories.
//!
//! Masks are `[B, L]` floats (1 = real item, 0 = padding). Padding keys get exactly zero
//! attention weight, a row with no real key attends to nothing (zeros, not NaN), and every
//! output row at a padding position is zeroed, so trailing padding never changes real rows.
//!
//! Two kernels compute `softmax(Q Kᵀ / √d) V` ([`AttentionKernel`]): the written-out `math`
//! (scores, mask, softmax, product: four `[B, H, L, L]` tensors and their gradients) and
//! libtorch's `fused` `scaled_dot_product_attention` (flash attention on the CPU, no score
//! tensor kept). They agree to float rounding (about 1e-7), not bit for bit.

use crate::error::{CoreError, Result};
use crate::layers::masked_softmax;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Which kernel computes the attention product (a model parameter, e.g. twotower's
/// `attention`). `fused` is faster (the twotower step about 1.2x on 2 CPU threads); `math` is
/// what the models' earlier runs used, kept so their numbers repeat exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, crate::ParamDocs)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKernel {
    /// `"math"`: scores, masked softmax and product written out.
    Math,
    /// `"fused"`: libtorch's `scaled_dot_product_attention`.
    Fused,
}

fn size_error(key: &str, message: String) -> CoreError {
    CoreError::Params {
        model: "attention".into(),
        key: key.into(),
        message,
    }
}

fn check_sizes(sizes: &[(&str, i64)]) -> Result<()> {
    for &(key, v) in sizes {
        if v < 1 {
            return Err(size_error(key, format!("must be at least 1, got {v}")));
        }
    }
    Ok(())
}

fn check_dropout(dropout: f64) -> Result<()> {
    if !(0.0..1.0).contains(&dropout) {
        return Err(size_error(
            "dropout",
            format!("must be in [0, 1), got {dropout}"),
        ));
    }
    Ok(())
}

/// Multi-head scaled dot-product self-attention with a key padding mask.
#[derive(Debug)]
pub struct MultiHeadSelfAttention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    out: nn::Linear,
    heads: i64,
    head_dim: i64,
    kernel: AttentionKernel,
}

impl MultiHeadSelfAttention {
    /// Q, K, V and output projections (Linear D->D each, stored as path/"q", "k", "v", "out").
    /// Errors (`CoreError::Params`, model "attention", key "heads") when `dim % heads != 0`, and
    /// naming the key ("dim" or "heads") when a size is below 1.
    pub fn new(path: &nn::Path, dim: i64, heads: i64) -> Result<Self> {
        check_sizes(&[("dim", dim), ("heads", heads)])?;
        if dim % heads != 0 {
            return Err(size_error(
                "heads",
                format!("{heads} heads do not divide the dimension {dim}"),
            ));
        }
        let lin = |name: &str| nn::linear(path / name, dim, dim, Default::default());
        Ok(Self {
            q: lin("q"),
            k: lin("k"),
            v: lin("v"),
            out: lin("out"),
            heads,
            head_dim: dim / heads,
            kernel: AttentionKernel::Math,
        })
    }

    /// The same layer computing with `kernel` (default [`AttentionKernel::Math`]).
    pub fn with_kernel(mut self, kernel: AttentionKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// `[B, L, D]` -> `[B, H, L, D / H]`.
    fn split(&self, x: &Tensor, b: i64, l: i64) -> Tensor {
        x.view([b, l, self.heads, self.head_dim]).transpose(1, 2)
    }

    /// x [B, L, D], mask [B, L] float (1 = real, 0 = padding). Keys at padding are ignored; a row
    /// with no real key gives zeros (no NaN). Output [B, L, D]; rows at padding positions are
    /// multiplied by the mask (zero). There is no dropout on the attention weights (`train` is
    /// unused; [`TransformerLayer`] drops out the whole residual branch instead).
    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let _ = train;
        let (b, l, d) = x
            .size3()
            .expect("MultiHeadSelfAttention: x must be [B, L, D]");
        let q = self.split(&self.q.forward(x), b, l);
        let k = self.split(&self.k.forward(x), b, l);
        let v = self.split(&self.v.forward(x), b, l);
        let weights_times_v = match self.kernel {
            AttentionKernel::Math => {
                let scores = q.matmul(&k.transpose(-2, -1)) / (self.head_dim as f64).sqrt();
                // Key mask [B, 1, 1, L] broadcasts over heads and queries; masked_softmax gives
                // padding keys weight exactly 0 and an all-padding row all-zero weights.
                let key_mask = mask.view([b, 1, 1, l]);
                masked_softmax(&scores, &key_mask, -1).matmul(&v)
            }
            AttentionKernel::Fused => Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                Some(fused_key_mask(mask, b, l)),
                0.0,
                false,
                None,
                false,
            ),
        };
        let ctx = weights_times_v.transpose(1, 2).contiguous().view([b, l, d]);
        // The output bias would make padding rows non-zero: zero them explicitly.
        self.out.forward(&ctx) * mask.unsqueeze(-1)
    }
}

/// The boolean key mask `[B, 1, 1, L]` of the fused kernel (true = attend). A row with no real
/// key attends to its first slot instead: every one of its queries is padding, so its output is
/// zeroed after the projection anyway, and no kernel sees an all-masked row (which some
/// backends answer with NaN, and NaN times the zero mask stays NaN).
fn fused_key_mask(mask: &Tensor, b: i64, l: i64) -> Tensor {
    let real = mask.gt(0.0);
    let empty = real.any_dim(1, true).logical_not(); // [B, 1]
    let first = Tensor::arange(l, (Kind::Int64, mask.device()))
        .eq(0)
        .unsqueeze(0); // [1, L]
    real.logical_or(&empty.logical_and(&first))
        .view([b, 1, 1, l])
}

/// One post-LayerNorm transformer block (as in BERT / BERT4Rec): `x = LN(x + MHSA(x))`;
/// `x = LN(x + FFN(x))` with `FFN = Linear(D, ffn) -> GELU -> Linear(ffn, D)` (GELU as in
/// BERT4Rec) and dropout on both residual branches. Stored as path/"attention", "ln1", "ffn1",
/// "ffn2", "ln2".
#[derive(Debug)]
pub struct TransformerLayer {
    attention: MultiHeadSelfAttention,
    ln1: nn::LayerNorm,
    ffn1: nn::Linear,
    ffn2: nn::Linear,
    ln2: nn::LayerNorm,
    dropout: f64,
}

impl TransformerLayer {
    /// Errors as [`MultiHeadSelfAttention::new`], and on `ffn_dim < 1` or `dropout` outside [0, 1).
    pub fn new(path: &nn::Path, dim: i64, heads: i64, ffn_dim: i64, dropout: f64) -> Result<Self> {
        check_sizes(&[("ffn_dim", ffn_dim)])?;
        check_dropout(dropout)?;
        let attention = MultiHeadSelfAttention::new(&(path / "attention"), dim, heads)?;
        Ok(Self {
            attention,
            ln1: nn::layer_norm(path / "ln1", vec![dim], Default::default()),
            ffn1: nn::linear(path / "ffn1", dim, ffn_dim, Default::default()),
            ffn2: nn::linear(path / "ffn2", ffn_dim, dim, Default::default()),
            ln2: nn::layer_norm(path / "ln2", vec![dim], Default::default()),
            dropout,
        })
    }

    /// `[B, L, D]` -> `[B, L, D]`, padding rows zeroed. Padding rows of `x` may hold anything:
    /// they are never attended to and every other step is per position.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let a = self
            .attention
            .forward(x, mask, train)
            .dropout(self.dropout, train);
        let h = self.ln1.forward(&(x + a));
        let f = self
            .ffn2
            .forward(&self.ffn1.forward(&h).gelu("none"))
            .dropout(self.dropout, train);
        // LayerNorm's bias makes padding rows non-zero again: zero them.
        self.ln2.forward(&(h + f)) * mask.unsqueeze(-1)
    }
}

/// Learned position embeddings (`max_len` positions, stored as path/"position" `[max_len, D]`,
/// N(0, 0.02) as in BERT) + a stack of [`TransformerLayer`] (path/"layers"/i), with dropout on
/// the position-augmented input as in BERT4Rec.
#[derive(Debug)]
pub struct TransformerEncoder {
    position: Tensor,
    layers: Vec<TransformerLayer>,
    dropout: f64,
    max_len: i64,
}

impl TransformerEncoder {
    /// Errors as [`TransformerLayer::new`], and on `layers < 1` or `max_len < 1` (naming the key).
    pub fn new(
        path: &nn::Path,
        dim: i64,
        heads: i64,
        layers: i64,
        ffn_dim: i64,
        dropout: f64,
        max_len: i64,
    ) -> Result<Self> {
        check_sizes(&[("layers", layers), ("max_len", max_len)])?;
        let stack = path / "layers";
        let layers = (0..layers)
            .map(|i| TransformerLayer::new(&(&stack / i), dim, heads, ffn_dim, dropout))
            .collect::<Result<Vec<_>>>()?;
        let position = path.var(
            "position",
            &[max_len, dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        Ok(Self {
            position,
            layers,
            dropout,
            max_len,
        })
    }

    /// The same encoder with every layer's attention computed by `kernel` (default
    /// [`AttentionKernel::Math`]).
    pub fn with_kernel(mut self, kernel: AttentionKernel) -> Self {
        self.layers = self
            .layers
            .into_iter()
            .map(|mut layer| {
                layer.attention = layer.attention.with_kernel(kernel);
                layer
            })
            .collect();
        self
    }

    /// x [B, L, D] with L <= max_len (positions 0..L; panics beyond), mask [B, L]. Histories are
    /// oldest-first with padding AFTER the last real item, so position p is slot p. Output
    /// `[B, L, D]` with padding rows zeroed (all zeros for an empty history).
    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let l = x.size()[1];
        assert!(
            l <= self.max_len,
            "TransformerEncoder: sequence length {l} exceeds max_len {}",
            self.max_len
        );
        let mut h = (x + self.position.narrow(0, 0, l).unsqueeze(0)).dropout(self.dropout, train);
        for layer in &self.layers {
            h = layer.forward(&h, mask, train);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        Vec::<Vec<f32>>::try_from(t.to_kind(Kind::Float)).unwrap()
    }

    fn close(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < tol)
            })
    }

    /// Sets a linear layer to the identity with zero bias.
    fn identity(l: &mut nn::Linear, dim: i64) {
        tch::no_grad(|| {
            l.ws.copy_(&Tensor::eye(dim, (Kind::Float, Device::Cpu)));
            if let Some(b) = &mut l.bs {
                b.copy_(&Tensor::zeros([dim], (Kind::Float, Device::Cpu)));
            }
        });
    }

    #[test]
    fn single_head_matches_hand_computation() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut a = MultiHeadSelfAttention::new(&vs.root(), 2, 1).unwrap();
        for l in [&mut a.q, &mut a.k, &mut a.v, &mut a.out] {
            identity(l, 2);
        }
        let xs = [[1.0f64, 0.5], [-0.3, 2.0], [0.7, -1.2]];
        let flat: Vec<f32> = xs.iter().flatten().map(|v| *v as f32).collect();
        let x = Tensor::from_slice(&flat).view([1, 3, 2]);
        let mask = Tensor::ones([1, 3], (Kind::Float, Device::Cpu));
        let got = rows(&tch::no_grad(|| a.forward(&x, &mask, false)).squeeze_dim(0));
        // softmax(Q K^T / sqrt(2)) V with Q = K = V = x.
        let mut expected = Vec::new();
        for qi in &xs {
            let s: Vec<f64> = xs
                .iter()
                .map(|kj| (qi[0] * kj[0] + qi[1] * kj[1]) / 2f64.sqrt())
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            let row: Vec<f32> = (0..2)
                .map(|c| (0..3).map(|j| e[j] / z * xs[j][c]).sum::<f64>() as f32)
                .collect();
            expected.push(row);
        }
        assert!(close(&got, &expected, 1e-5), "{got:?} vs {expected:?}");
    }

    const KERNELS: [AttentionKernel; 2] = [AttentionKernel::Math, AttentionKernel::Fused];

    #[test]
    fn padding_keys_do_not_change_real_rows() {
        for kernel in KERNELS {
            padding_keys_do_not_change_real_rows_with(kernel);
        }
    }

    fn padding_keys_do_not_change_real_rows_with(kernel: AttentionKernel) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let enc = TransformerEncoder::new(&vs.root(), 4, 2, 2, 16, 0.0, 8)
            .unwrap()
            .with_kernel(kernel);
        let x = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu));
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0]).view([2, 3]);
        // Three more padding slots holding garbage (large values) instead of zeros.
        let garbage = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu)) * 100.0;
        let mut xp = Tensor::cat(&[&x, &garbage], 1);
        let mp = Tensor::cat(
            &[&mask, &Tensor::zeros([2, 3], (Kind::Float, Device::Cpu))],
            1,
        );
        // The second row's padding slot 2 also gets garbage in the longer batch.
        let _ = xp.index_put_(
            &[
                Some(Tensor::from_slice(&[1i64])),
                Some(Tensor::from_slice(&[2i64])),
            ],
            &Tensor::full([4], 50.0, (Kind::Float, Device::Cpu)),
            false,
        );
        let (a, b) = tch::no_grad(|| (enc.forward(&x, &mask, false), enc.forward(&xp, &mp, false)));
        assert_eq!(b.size(), [2, 6, 4]);
        let a0 = rows(&a.get(0));
        let b0 = rows(&b.get(0).narrow(0, 0, 3));
        assert!(close(&a0, &b0, 1e-5), "{kernel:?}: {a0:?} vs {b0:?}");
        let a1 = rows(&a.get(1));
        let b1 = rows(&b.get(1).narrow(0, 0, 3));
        assert!(close(&a1, &b1, 1e-5), "{a1:?} vs {b1:?}");
        assert!(
            a1[2].iter().all(|v| *v == 0.0),
            "padding row zeroed: {a1:?}"
        );
        let tail = rows(&b.get(1).narrow(0, 2, 4));
        assert!(tail.iter().flatten().all(|v| *v == 0.0), "{tail:?}");
    }

    #[test]
    fn all_padding_row_gives_finite_zeros() {
        for kernel in KERNELS {
            all_padding_row_gives_finite_zeros_with(kernel);
        }
    }

    fn all_padding_row_gives_finite_zeros_with(kernel: AttentionKernel) {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let attn = MultiHeadSelfAttention::new(&(vs.root() / "a"), 4, 2)
            .unwrap()
            .with_kernel(kernel);
        let enc = TransformerEncoder::new(&(vs.root() / "e"), 4, 2, 1, 8, 0.1, 3)
            .unwrap()
            .with_kernel(kernel);
        let x = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu));
        let mask = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0]).view([2, 3]);
        for train in [false, true] {
            for out in [
                attn.forward(&x, &mask, train),
                enc.forward(&x, &mask, train),
            ] {
                let r = rows(&out.get(0));
                assert!(r.iter().flatten().all(|v| *v == 0.0), "{r:?}");
                let all = rows(&out.view([-1, 4]));
                assert!(all.iter().flatten().all(|v| v.is_finite()), "{all:?}");
            }
        }
        // Gradients through an all-padding row stay finite too.
        let xg = x.set_requires_grad(true);
        enc.forward(&xg, &mask, true).sum(Kind::Float).backward();
        let g = rows(&xg.grad().view([-1, 4]));
        assert!(g.iter().flatten().all(|v| v.is_finite()), "{g:?}");
    }

    /// The fused kernel is the math kernel to float rounding: outputs and every gradient, with
    /// partial padding and an all-padding row in the batch.
    #[test]
    fn fused_kernel_matches_math() {
        let enc = |kernel| {
            let vs = nn::VarStore::new(Device::Cpu);
            let e = TransformerEncoder::new(&vs.root(), 8, 2, 2, 16, 0.0, 6)
                .unwrap()
                .with_kernel(kernel);
            (vs, e)
        };
        let (vm, math) = enc(AttentionKernel::Math);
        let (mut vf, fused) = enc(AttentionKernel::Fused);
        // Copied, not re-seeded: tests share the global generator across threads.
        vf.copy(&vm).unwrap();
        let x = Tensor::randn([3, 6, 8], (Kind::Float, Device::Cpu));
        let mask = Tensor::from_slice(&[
            1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.0,
        ])
        .view([3, 6]);
        let weights = Tensor::randn([3, 6, 8], (Kind::Float, Device::Cpu));
        let run = |e: &TransformerEncoder| {
            let xg = x.copy().set_requires_grad(true);
            let out = e.forward(&xg, &mask, true);
            (&out * &weights).sum(Kind::Float).backward();
            (rows(&out.view([-1, 8])), rows(&xg.grad().view([-1, 8])))
        };
        let (om, gm) = run(&math);
        let (of, gf) = run(&fused);
        assert!(close(&om, &of, 1e-5), "{om:?} vs {of:?}");
        assert!(close(&gm, &gf, 1e-5), "{gm:?} vs {gf:?}");
        assert!(of[12..].iter().flatten().all(|v| *v == 0.0), "{of:?}");
        let (pm, pf) = (vm.variables(), vf.variables());
        assert_eq!(pm.len(), pf.len());
        for (name, t) in &pm {
            let (a, b) = (t.grad(), pf[name].grad());
            let diff = (&a - &b).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{name}: gradients differ by {diff}");
        }
        let first = pm["layers.0.attention.q.weight"]
            .grad()
            .abs()
            .sum(Kind::Float)
            .double_value(&[]);
        assert!(first > 0.0, "the comparison must see real gradients");
    }

    #[test]
    fn bad_sizes_are_errors_naming_the_key() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let err = MultiHeadSelfAttention::new(&p, 6, 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'heads'"), "{err}");
        let err = MultiHeadSelfAttention::new(&p, 6, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'heads'"), "{err}");
        let err = TransformerLayer::new(&p, 4, 2, 0, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'ffn_dim'"), "{err}");
        let err = TransformerEncoder::new(&p, 5, 2, 1, 8, 0.0, 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'heads'"), "{err}");
        let err = TransformerEncoder::new(&p, 4, 2, 1, 8, 0.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'max_len'"), "{err}");
        let err = TransformerEncoder::new(&p, 4, 2, 1, 8, 1.0, 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'dropout'"), "{err}");
    }
}
