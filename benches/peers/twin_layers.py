"""Building blocks of the PyTorch twins (benches/peers/twin_models.py), written the plain PyTorch
way. Each mirrors a longtail block (crates/core/src/layers.rs, attention.rs, losses.rs and
crates/models/src/routing.rs) and keeps its parameter names, so longtail's initial parameters
load into the twin by name.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def embedding(num, dim):
    """An id table whose row 0 is padding (no gradient), like longtail's id embeddings."""
    return nn.Embedding(num, dim, padding_idx=0)


class Mlp(nn.ModuleList):
    """in -> hidden... -> out with ReLU (and dropout) between layers, none after the last.
    Layer i is parameter group `i` (`mlp.0.weight`, ...)."""

    def __init__(self, in_dim, hidden, out_dim, dropout=0.0):
        dims = [in_dim, *hidden, out_dim]
        super().__init__(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.dropout = dropout

    def forward(self, x):
        for i, layer in enumerate(self):
            x = layer(x)
            if i + 1 < len(self):
                x = torch.relu(x)
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
        return x


def masked_sum(x, mask):
    """Sum of x [B, L, D] over the positions where mask [B, L] is 1."""
    return (x * mask.unsqueeze(-1)).sum(1)


def masked_softmax(scores, mask, dim):
    """Softmax over `dim` ignoring positions where mask is 0 (an all-0 row gives zeros)."""
    return scores.masked_fill(mask == 0, -1e9).softmax(dim) * mask


def bce_with_logits(logits, batch):
    """Binary cross-entropy averaged over the real rows (padding rows have weight 0)."""
    per = F.binary_cross_entropy_with_logits(logits, batch.label, reduction="none")
    return (per * batch.weight).sum() / batch.weight.sum().clamp_min(1.0)


def in_batch_softmax(logits, batch, logq_correction):
    """In-batch softmax with logQ correction; padding columns and accidental hits (another
    column holding the row's own item) are masked out."""
    return -(positive_log_probs(logits, batch, logq_correction) * batch.weight).sum() / (
        batch.weight.sum().clamp_min(1.0)
    )


def positive_log_probs(logits, batch, logq_correction):
    """log p of each row's own column under the corrected, masked in-batch softmax, [B]."""
    n = logits.shape[0]
    if logq_correction:
        logits = logits - batch.item_logq.unsqueeze(0)
    pad_col = (batch.weight == 0).unsqueeze(0)
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    hit = (batch.item.unsqueeze(1) == batch.item.unsqueeze(0)) & ~eye
    logits = logits.masked_fill(pad_col, -1e9).masked_fill(hit, -1e9)
    target = torch.arange(n, device=logits.device)
    return logits.log_softmax(-1).gather(1, target.unsqueeze(1)).squeeze(1)


def candidate_aware_scores(users, items, lean=False):
    """IDW eq. 4: users [B, K, D] against items [N, D] -> [B, N], each candidate mixing the
    user's interests by softmax_k(z_k . g). `lean`: the softmax over k in the product's own
    [B, K, N] layout (no transpose, a softmax over the long axis' neighbours) and the plain dot
    product for K = 1, as a PyTorch user tuning the step would write it."""
    a = users @ items.transpose(-1, -2)
    if lean:
        if a.shape[1] == 1:
            return a.squeeze(1)
        return (a.softmax(1) * a).sum(1)
    a = a.transpose(1, 2)
    return (a.softmax(-1) * a).sum(-1)


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention with a key padding mask; padding rows are zeroed.
    `fused`: F.scaled_dot_product_attention with a boolean key mask (an empty row attends to its
    first slot; its output is zeroed by the query mask), else the written-out softmax."""

    def __init__(self, dim, heads, fused=False):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.heads = heads
        self.head_dim = dim // heads
        self.fused = fused

    def forward(self, x, mask):
        b, l, d = x.shape

        def split(t):
            return t.view(b, l, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.fused:
            real = mask > 0
            first = torch.arange(l, device=x.device).eq(0).unsqueeze(0)
            keys = real | (~real.any(1, keepdim=True) & first)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keys.view(b, 1, 1, l))
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            weights = masked_softmax(scores, mask.view(b, 1, 1, l), -1)
            ctx = weights @ v
        ctx = ctx.transpose(1, 2).contiguous().view(b, l, d)
        return self.out(ctx) * mask.unsqueeze(-1)


class TransformerLayer(nn.Module):
    """Post-LayerNorm block: x = LN(x + MHSA(x)); x = LN(x + FFN(x)), GELU feed-forward."""

    def __init__(self, dim, heads, ffn_dim, dropout, fused=False):
        super().__init__()
        self.attention = MultiHeadSelfAttention(dim, heads, fused)
        self.ln1 = nn.LayerNorm(dim)
        self.ffn1 = nn.Linear(dim, ffn_dim)
        self.ffn2 = nn.Linear(ffn_dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.dropout = dropout

    def forward(self, x, mask):
        a = F.dropout(self.attention(x, mask), self.dropout, self.training)
        h = self.ln1(x + a)
        f = F.dropout(self.ffn2(F.gelu(self.ffn1(h))), self.dropout, self.training)
        return self.ln2(h + f) * mask.unsqueeze(-1)


class TransformerEncoder(nn.Module):
    """Learned positions + a stack of TransformerLayer, dropout on the input."""

    def __init__(self, dim, heads, layers, ffn_dim, dropout, max_len, fused=False):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(max_len, dim))
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, ffn_dim, dropout, fused) for _ in range(layers)
        )
        self.dropout = dropout

    def forward(self, x, mask):
        h = x + self.position[: x.shape[1]].unsqueeze(0)
        h = F.dropout(h, self.dropout, self.training)
        for layer in self.layers:
            h = layer(h, mask)
        return h


def squash(s):
    """Capsule non-linearity |s|^2 / (1 + |s|^2) * s / |s| (eps under the root)."""
    n2 = s.square().sum(-1, keepdim=True)
    return s * (n2 / (n2 + 1.0) / (n2 + 1e-9).sqrt())


def dynamic_routing(pred, mask, init, iters, stop_gradient):
    """Behavior-to-interest routing: pred [B, K|1, L, D], mask [B, L], init logits broadcastable
    to [B, K, L] -> capsules [B, K, D]. With stop_gradient every round but the last routes the
    detached predictions."""
    mask = mask.unsqueeze(1)
    frozen = pred.detach() if stop_gradient else pred
    logits = init
    for it in range(iters):
        last = it + 1 == iters
        u = pred if last else frozen
        w = logits.softmax(-2) * mask
        v = squash((w.unsqueeze(-1) * u).sum(2))
        if not last:
            logits = logits + (u * v.unsqueeze(2)).sum(-1)
    return v


class ActivationUnit(nn.Module):
    """DIN's local activation unit: [h, t, h - t, h * t] -> (Linear -> PReLU)* -> Linear -> one
    raw weight per behavior. Hidden layer i is the child `i` holding `weight`, `bias` and its
    PReLU slopes `alpha` (one per unit, over the feature dimension)."""

    def __init__(self, dim, hidden):
        super().__init__()
        in_dim = 4 * dim
        self.hidden = []
        for i, h in enumerate(hidden):
            layer = nn.Linear(in_dim, h)
            layer.alpha = nn.Parameter(torch.full((h,), 0.25))
            self.add_module(str(i), layer)
            self.hidden.append(layer)
            in_dim = h
        self.out = nn.Linear(in_dim, 1)

    def forward(self, hist, target):
        t = target.unsqueeze(1).expand_as(hist)
        x = torch.cat([hist, t, hist - t, hist * t], -1)
        for layer in self.hidden:
            y = layer(x)
            x = torch.relu(y) + layer.alpha * y.clamp_max(0.0)
        return self.out(x).squeeze(-1)
