"""PyTorch eager twins of every longtail model (crates/models/src/*.rs), one nn.Module each,
written the way a researcher writes the model in PyTorch. Each computes exactly what the longtail
model computes in a training forward and returns its unweighted loss terms by name, in
longtail's order; parameters carry longtail's variable names, so the initial parameters load by
name. Non-trainable longtail variables (MIND's routing logits, MFN's fixed embeddings and
centers, PIN's phase) are buffers.

`build(name, params, feature_map)` makes the twin of a registered model from its effective
params (`Registry::params_info`) and the dataset's feature map.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from twin_layers import (
    ActivationUnit,
    Mlp,
    MultiHeadSelfAttention,
    TransformerEncoder,
    bce_with_logits,
    candidate_aware_scores,
    dynamic_routing,
    embedding,
    in_batch_softmax,
    masked_softmax,
    masked_sum,
    positive_log_probs,
)


class FeatureMap:
    """The dataset's feature map (spec.json's `feature_map`), by feature name."""

    def __init__(self, fm):
        self.features = {f["name"]: f for f in fm["features"]}

    def vocab(self, name):
        return self.features[name]["vocab"]

    def max_len(self, name):
        n = self.features[name].get("max_len")
        if not n:
            raise ValueError(f"feature '{name}' needs a positive max_len, got {n}")
        return n

    def dims(self, name):
        return self.features[name].get("dims")


def user_table(p, fm, d):
    return embedding(fm.vocab("user"), d) if p.get("user_embedding", True) else None


def ctr_head(mlp, parts):
    return mlp(torch.cat(parts, -1)).squeeze(-1)


class BaseModel(nn.Module):
    """HIM's Embedding & MLP baseline: sum-pooled behaviors, target and user -> MLP."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.mlp = Mlp(d * (3 if self.user is not None else 2), p["hidden"], 1, p["dropout"])

    def forward(self, b):
        parts = [masked_sum(self.item(b.hist), b.hist_mask), self.item(b.item)]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class Popularity(nn.Module):
    """logit = b + w_item[item]."""

    def __init__(self, p, fm):
        super().__init__()
        self.item = embedding(fm.vocab("item"), 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, b):
        logits = self.item(b.item).squeeze(-1) + self.bias
        return {"ctr": bce_with_logits(logits, b)}


class Lr(nn.Module):
    """Logistic regression: bias + user + item + sqrt(n)-normalised history bag (own table)."""

    def __init__(self, p, fm):
        super().__init__()
        self.user = embedding(fm.vocab("user"), 1) if p["user_embedding"] else None
        self.item = embedding(fm.vocab("item"), 1)
        self.hist = embedding(fm.vocab("hist"), 1) if p["hist"] else None
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, b):
        logits = self.item(b.item).squeeze(-1) + self.bias
        if self.user is not None:
            logits = logits + self.user(b.user).squeeze(-1)
        if self.hist is not None:
            w = self.hist(b.hist).squeeze(-1) * b.hist_mask
            n = b.hist_mask.sum(1)
            logits = logits + w.sum(1) / n.clamp_min(1.0).sqrt()
        return {"ctr": bce_with_logits(logits, b)}


def last_state(out, hist_len):
    """The GRU output after each row's last real behavior [B, H]; zeros for empty histories."""
    rows, l, h = out.shape
    length = hist_len.clamp(0, l)
    idx = (length - 1).clamp_min(0).view(rows, 1, 1).expand(rows, 1, h)
    last = out.gather(1, idx).squeeze(1)
    return last * (length > 0).to(last.dtype).unsqueeze(-1)


class Gru4Rec(nn.Module):
    """GRU over the history; the last real state, target (and user) -> MLP."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        h = p.get("hidden_size") or d
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.gru = nn.GRU(d, h, batch_first=True)
        inputs = h + d * (2 if self.user is not None else 1)
        self.mlp = Mlp(inputs, p["hidden"], 1, p["dropout"])

    def forward(self, b):
        out, _ = self.gru(self.item(b.hist))
        parts = [last_state(out, b.hist_len), self.item(b.item)]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class Din(nn.Module):
    """DIN: target attention (activation unit, unnormalised weights) over behaviors + MLP."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.attention = ActivationUnit(d, p["attention_hidden"])
        self.mlp = Mlp(d * (3 if self.user is not None else 2), p["hidden"], 1, p["dropout"])

    def forward(self, b):
        hist = self.item(b.hist)
        target = self.item(b.item)
        a = self.attention(hist, target) * b.hist_mask
        pooled = (hist * a.unsqueeze(-1)).sum(1)
        parts = [pooled, target]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class Augru(nn.Module):
    """GRU with attentional update gate (DIEN eqs. 8-9), gates in PyTorch's order."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        self.x2g = nn.Linear(in_dim, 3 * hidden)
        self.h2g = nn.Linear(hidden, 3 * hidden)
        self.hidden = hidden

    def forward(self, x, a, m):
        b, l = x.shape[0], x.shape[1]
        h = x.new_zeros(b, self.hidden)
        keep = (m > 0).unsqueeze(-1)
        for t in range(l):
            xr, xz, xn = self.x2g(x[:, t]).chunk(3, -1)
            hr, hz, hn = self.h2g(h).chunk(3, -1)
            r = torch.sigmoid(xr + hr)
            u = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            u = u * a[:, t : t + 1]
            nxt = (1.0 - u) * h + u * n
            h = torch.where(keep[:, t], nxt, h)
        return h


class Dien(nn.Module):
    """DIEN: GRU interest extractor with the auxiliary loss, attention + AUGRU evolution."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        h = p.get("hidden_size") or d
        self.items = fm.vocab("item")
        self.user = user_table(p, fm, d)
        self.item = embedding(self.items, d)
        self.extractor = nn.GRU(d, h, batch_first=True)
        self.aux_proj = nn.Linear(d, h, bias=False) if h != d else None
        self.attention = nn.Linear(d, h, bias=False)
        self.augru = Augru(h, h)
        inputs = h + 2 * d + (d if self.user is not None else 0)
        self.mlp = Mlp(inputs, p["hidden"], 1, p["dropout"])

    def aux_score(self, h, e):
        if self.aux_proj is not None:
            e = self.aux_proj(e)
        return (h * e).sum(-1)

    def aux_loss(self, b, h, e):
        steps = h.shape[1] - 1
        h_t = h[:, :steps]
        pos_ids = b.hist[:, 1:]
        valid = b.hist_mask[:, 1:]
        # Uniform negatives from 1..vocab, never the clicked item.
        neg_ids = torch.randint(1, max(self.items, 2), (b.size, steps), device=h.device)
        if self.items > 2:
            shifted = neg_ids.remainder(self.items - 1) + 1
            neg_ids = torch.where(neg_ids == pos_ids, shifted, neg_ids)
        pos = self.aux_score(h_t, e[:, 1:])
        neg = self.aux_score(h_t, self.item(neg_ids))
        ll = F.logsigmoid(pos) + F.logsigmoid(-neg)
        w = valid * b.weight.unsqueeze(1)
        return -(ll * w).sum() / w.sum().clamp_min(1e-12)

    def forward(self, b):
        e = self.item(b.hist)
        h, _ = self.extractor(e)
        target = self.item(b.item)
        att = (h * self.attention(target).unsqueeze(1)).sum(-1)
        a = masked_softmax(att, b.hist_mask, 1)
        interest = self.augru(h, a, b.hist_mask)
        parts = [interest, target, masked_sum(e, b.hist_mask)]
        if self.user is not None:
            parts.append(self.user(b.user))
        logits = ctr_head(self.mlp, parts)
        return {"ctr": bce_with_logits(logits, b), "aux": self.aux_loss(b, h, e)}


class SessionAttention(nn.Module):
    """HIM eq. 5's bias-free maps W_q, W_k, W."""

    def __init__(self, dim):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)


class UbcSession(nn.Module):
    """HIM eq. 6's per-session group auto-encoder: encode D -> k, groups [k, d_g], decode."""

    def __init__(self, dim, groups, group_dim):
        super().__init__()
        self.encode = nn.Linear(dim, groups)
        self.groups = nn.Parameter(torch.randn(groups, group_dim))
        self.decode = nn.Linear(group_dim, dim)


def him_partners(b, p, training):
    """[B, p] other real rows per row (random offsets in 1..valid when training)."""
    valid = b.valid
    if valid < 2 or p < 1:
        return None
    dev = b.item.device
    base = torch.arange(b.size, device=dev).remainder(valid).unsqueeze(1)
    if training:
        offsets = torch.randint(1, valid, (b.size, p), device=dev)
    else:
        offsets = (torch.arange(p, device=dev).remainder(valid - 1) + 1).unsqueeze(0)
    return (base + offsets).remainder(valid)


def group_hinge(p_hat, p_z, partners, weight):
    """HIM eq. 8 with cosine similarity, averaged over rows by weight."""
    b, s, d = p_hat.shape
    p = partners.shape[1]
    pos = F.cosine_similarity(p_hat, p_z, dim=-1, eps=1e-8)
    others = p_hat.index_select(0, partners.reshape(-1)).view(b, p, s, d)
    neg = F.cosine_similarity(p_hat.unsqueeze(1), others, dim=-1, eps=1e-8)
    hinge = (neg - pos.unsqueeze(1) + 1.0).clamp_min(0.0)
    return (hinge.sum((1, 2)) * weight).sum() / weight.sum().clamp_min(1.0)


class Him(nn.Module):
    """HIM: frequency-ranked sessions, UBP (distance attention, GRU, self-attention across
    sessions) and UBC (group auto-encoder, group hinge loss)."""

    def __init__(self, p, fm):
        super().__init__()
        dims = fm.dims("sessions") if "sessions" in fm.features else None
        if not dims or len(dims) != 2:
            raise ValueError("him needs HIM sessions (feature 'sessions' with dims [S, n])")
        self.sessions, self.top_n = dims
        d = p["embedding_dim"]
        h = p.get("gru_hidden") or d
        self.p = p
        self.d = d
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.gru = nn.GRU(d, h, batch_first=True)
        self.uses_negatives = p["ubp"] != "positive"
        self.d_x = self.top_n * h + (d if self.uses_negatives else 0)
        dx, s = self.d_x, self.sessions
        self.attention = SessionAttention(dx)
        if p["ubc"]:
            self.ubc = nn.ModuleList(
                UbcSession(dx, p["groups"], p["group_dim"]) for _ in range(s)
            )
            self.att_p = nn.Linear(d, s * dx, bias=False)
            self.att_c = nn.Linear(d, s * p["group_dim"], bias=False)
        else:
            self.ubc = None
        inputs = s * dx + (s * p["group_dim"] if p["ubc"] else 0) + d
        inputs += d if self.user is not None else 0
        self.mlp = Mlp(inputs, p["hidden"], 1, p["dropout"])

    def weights(self, counts, mask):
        return counts.float() * mask if self.p["frequency_weighting"] else mask

    def forward(self, b):
        s = b.sessions
        bs, ns, n, d, dx = b.size, self.sessions, self.top_n, self.d, self.d_x

        # UBP within each session (eqs. 1-4).
        pos_mask = (s.pos_items != 0).float()
        e_hat = self.item(s.pos_items) * self.weights(s.pos_counts, pos_mask).unsqueeze(-1)
        real = pos_mask.sum(-1) > 0
        gru_in, neg = e_hat, None
        if self.uses_negatives:
            neg_mask = (s.neg_items != 0).float()
            f_neg = self.weights(s.neg_counts, neg_mask)
            neg = (self.item(s.neg_items) * f_neg.unsqueeze(-1)).sum(-2)
            real = real | (neg_mask.sum(-1) > 0)
            if self.p["ubp"] == "full":
                diff = e_hat - neg.unsqueeze(-2)
                dist = ((diff * diff).sum(-1) + 1e-12).sqrt()
                gru_in = e_hat * masked_softmax(dist, pos_mask, -1).unsqueeze(-1)
        states, _ = self.gru(gru_in.reshape(bs * ns, n, d))
        states = states * pos_mask.reshape(bs * ns, n, 1)
        p_x = states.reshape(bs, ns, -1)
        if neg is not None:
            p_x = torch.cat([p_x, neg], -1)

        # Self-attention across sessions (eq. 5).
        q = self.attention.q(p_x)
        k = self.attention.k(p_x)
        v = self.attention.v(p_x)
        scores = q @ k.transpose(1, 2) / math.sqrt(dx)
        p_z = masked_softmax(scores, real.float().unsqueeze(1), -1) @ v
        p_z_flat = p_z.reshape(bs, ns * dx)

        # Prediction (eqs. 9-10) with UBC (eqs. 6-8).
        e_t = self.item(b.item)
        terms = {}
        if self.ubc is not None:
            p_hat, c_z = [], []
            for i, u in enumerate(self.ubc):
                beta = u.encode(p_x[:, i]).softmax(-1)
                p_hat.append(torch.sigmoid(u.decode(beta @ u.groups)))
                c_z.append(u.groups.index_select(0, beta.argmax(-1)))
            p_hat = torch.stack(p_hat, 1)
            c_z = torch.cat(c_z, -1)
            partners = him_partners(b, self.p["negative_users"], self.training)
            if partners is None:
                group = torch.zeros((), device=e_t.device)
            else:
                group = group_hinge(p_hat, p_z, partners, b.weight)
            a_p = (p_z_flat * self.att_p(e_t)).sum(-1)
            a_c = (c_z * self.att_c(e_t)).sum(-1)
            w = torch.stack([a_p, a_c], -1).softmax(-1)
            parts = [p_z_flat * w[:, 0:1], c_z * w[:, 1:2]]
        else:
            parts = [p_z_flat]
        parts.append(e_t)
        if self.user is not None:
            parts.append(self.user(b.user))
        terms["ctr"] = bce_with_logits(ctr_head(self.mlp, parts), b)
        if self.ubc is not None:
            terms["group"] = group
        return terms


class Mind(nn.Module):
    """MIND: B2I dynamic routing with one shared bilinear map, fixed initial routing logits,
    label-aware attention to the target + MLP."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        self.p = p
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.bilinear = nn.Parameter(torch.randn(d, d))
        self.register_buffer("routing_logits", torch.randn(p["interests"], fm.max_len("hist")))
        self.mlp = Mlp(d * (3 if self.user is not None else 2), p["hidden"], 1, p["dropout"])

    def forward(self, b):
        hist = self.item(b.hist)
        pred = (hist @ self.bilinear.t()).unsqueeze(1)
        init = self.routing_logits[:, : hist.shape[1]]
        capsules = dynamic_routing(
            pred, b.hist_mask, init, self.p["routing_iters"], self.p["stop_gradient"]
        )
        target = self.item(b.item)
        s = (capsules @ target.unsqueeze(-1)).squeeze(-1)
        a = s.pow(self.p["pow_p"]).softmax(-1)
        parts = [(capsules * a.unsqueeze(-1)).sum(1), target]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class ComiRec(nn.Module):
    """ComiRec-DR (per-position routing maps) and ComiRec-SA (K-head self-attention): K
    interests, the one closest to the target (argmax, or a softmax mix) + MLP."""

    def __init__(self, p, fm, variant):
        super().__init__()
        d, k = p["embedding_dim"], p["interests"]
        max_len = fm.max_len("hist")
        self.p, self.variant = p, variant
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        if variant == "dr":
            self.routing_weights = nn.Parameter(torch.randn(max_len, k, d, d))
        else:
            da = p.get("attention_hidden") or 4 * d
            self.attention = nn.Module()
            self.attention.w1 = nn.Linear(d, da)
            self.attention.w2 = nn.Linear(da, k, bias=False)
            self.positions = nn.Parameter(torch.randn(max_len, d))
        self.mlp = Mlp(d * (3 if self.user is not None else 2), p["hidden"], 1, p["dropout"])

    def interests(self, b):
        hist = self.item(b.hist)
        l = hist.shape[1]
        if self.variant == "dr":
            pred = torch.einsum("lkde,ble->bkld", self.routing_weights[:l], hist)
            init = torch.zeros(self.p["interests"], l, device=hist.device)
            return dynamic_routing(
                pred, b.hist_mask, init, self.p["routing_iters"], self.p["stop_gradient"]
            )
        with_pos = hist + self.positions[:l].unsqueeze(0)
        scores = self.attention.w2(torch.tanh(self.attention.w1(with_pos)))
        a = masked_softmax(scores.transpose(1, 2), b.hist_mask.unsqueeze(1), -1)
        return a @ hist

    def forward(self, b):
        v = self.interests(b)
        target = self.item(b.item)
        s = (v @ target.unsqueeze(-1)).squeeze(-1)
        if self.p["aggregation"] == "softmax":
            w = s.softmax(-1)
        else:
            w = F.one_hot(s.argmax(-1), self.p["interests"]).float()
        parts = [(v * w.unsqueeze(-1)).sum(1), target]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class TransformerRec(nn.Module):
    """Transformer encoder over the history, target-aware softmax pooling + MLP."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        self.d = d
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.encoder = TransformerEncoder(
            d,
            p["heads"],
            p["layers"],
            p.get("ffn_dim") or 4 * d,
            p["dropout"],
            fm.max_len("hist"),
        )
        self.mlp = Mlp(d * (3 if self.user is not None else 2), p["hidden"], 1, p["mlp_dropout"])

    def forward(self, b):
        target = self.item(b.item)
        h = self.encoder(self.item(b.hist), b.hist_mask)
        scores = (h @ target.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.d)
        a = masked_softmax(scores, b.hist_mask, 1)
        pooled = (h * a.unsqueeze(-1)).sum(1)
        parts = [] if self.user is None else [self.user(b.user)]
        parts += [pooled, target]
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


def interest_weights(net, r, t):
    """MFN's attention nets a_1, a_2: MLP over [r, t, r * t, r - t], softmax over interests."""
    t = t.unsqueeze(1).expand_as(r)
    return net(torch.cat([r, t, r * t, r - t], -1)).squeeze(-1).softmax(-1)


class Mfn(nn.Module):
    """MFN: similarity interests from fixed embeddings and centers, combination interests from
    self-attention, two attention nets to the target + MLP. Item side features are not in the
    twin inputs, so MFN is twinned on ids only (as the step bench builds it)."""

    def __init__(self, p, fm):
        super().__init__()
        if p.get("attributes"):
            raise ValueError("mfn's item side features (attributes) are not in the twin inputs")
        d, k = p["embedding_dim"], p["interests"]
        self.p = p
        self.user = user_table(p, fm, d)
        self.item = embedding(fm.vocab("item"), d)
        self.register_buffer("fixed_item", torch.zeros(fm.vocab("item"), d))
        self.register_buffer("centers", torch.zeros(k, d))
        if p["combination"]:
            self.msa = MultiHeadSelfAttention(d, p["heads"])
            self.w1 = nn.Linear(d, p["combination_hidden"])
            self.w2 = nn.Linear(p["combination_hidden"], k, bias=False)
            self.a2 = Mlp(4 * d, p["attention_hidden"], 1)
        else:
            self.msa = None
        self.a1 = Mlp(4 * d, p["attention_hidden"], 1)
        self.mlp = Mlp(2 * d + (d if self.user is not None else 0), p["hidden"], 1, p["dropout"])

    def forward(self, b):
        e = self.item(b.hist) * b.hist_mask.unsqueeze(-1)
        t = self.item(b.item)
        # Similarity interests (eqs. 4-5): assignments of the fixed embeddings to the centers.
        fixed = self.fixed_item[b.hist]
        assign = (fixed @ self.centers.t()).softmax(-1) * b.hist_mask.unsqueeze(-1)
        rs = assign.transpose(1, 2) @ e
        if self.p["similarity_pooling"] == "mean":
            rs = rs / b.hist_mask.sum(1).clamp_min(1.0).view(-1, 1, 1)
        r = (rs * interest_weights(self.a1, rs, t).unsqueeze(-1)).sum(1)
        if self.msa is not None:
            # Combination interests (eqs. 6-7).
            h = self.msa(e, b.hist_mask)
            s = self.w2(F.silu(self.w1(h)))
            a = masked_softmax(s, b.hist_mask.unsqueeze(-1), 1)
            rc = a.transpose(1, 2) @ e
            r = r + (rc * interest_weights(self.a2, rc, t).unsqueeze(-1)).sum(1)
        parts = [r, t]
        if self.user is not None:
            parts.append(self.user(b.user))
        return {"ctr": bce_with_logits(ctr_head(self.mlp, parts), b)}


class TwoTower(nn.Module):
    """IDW's two-tower retrieval model: transformer user tower with M learned queries, MLP item
    tower, candidate-aware in-batch scores and the in-batch softmax with logQ correction (or
    its focal / qmargin variants, with optional item normalisation)."""

    def __init__(self, p, fm, lean=False):
        super().__init__()
        d = p["embedding_dim"]
        items = fm.vocab("item")
        self.p = p
        self.lean = lean
        self.user_tower = nn.Module()
        self.user_tower.embedding = embedding(items, d)
        self.user_tower.encoder = TransformerEncoder(
            d,
            p["heads"],
            p["layers"],
            p.get("ffn_dim") or 4 * d,
            p["dropout"],
            fm.max_len("hist"),
            fused=lean and p.get("attention", "math") == "fused",
        )
        self.user_tower.queries = nn.Parameter(torch.randn(p["interests"], d) / math.sqrt(d))
        self.item_tower = nn.Module()
        self.item_tower.embedding = embedding(items, d)
        *hidden, last = p["item_hidden"]
        self.item_tower.mlp = Mlp(d, hidden, last)

    def users(self, b):
        u = self.user_tower
        h = u.encoder(u.embedding(b.hist), b.hist_mask)
        scores = (h @ u.queries.t()).transpose(1, 2)
        return masked_softmax(scores, b.hist_mask.unsqueeze(1), -1) @ h

    def items(self, ids):
        g = self.item_tower.mlp(self.item_tower.embedding(ids))
        norm = self.p["item_norm"]
        if norm == "train" or (norm == "posthoc" and not self.training):
            g = g / (g.norm(2, dim=-1, keepdim=True).clamp_min(1e-12) * self.p["temperature"])
        return g

    def forward(self, b):
        logits = candidate_aware_scores(self.users(b), self.items(b.item), self.lean)
        loss, logq = self.p["loss"], self.p["logq_correction"]
        if loss == "qmargin":
            margins = (b.item_logq * -0.25).exp() * self.p["qmargin_scale"]
            value = in_batch_softmax(logits - torch.diag_embed(margins), b, logq)
        elif loss == "focal":
            logp = positive_log_probs(logits, b, logq)
            factor = (-logp.expm1()).clamp_min(1e-12).pow(self.p["focal_gamma"])
            value = (-(factor * logp) * b.weight).sum() / b.weight.sum().clamp_min(1.0)
        else:
            value = in_batch_softmax(logits, b, logq)
        return {"softmax": value}


class Pin(nn.Module):
    """PIN: a DIN / GRU4Rec / transformer backbone, a shared head and two plugins routed by the
    user's stratum (phase 1). The phase is longtail's `phase` variable, read at load."""

    def __init__(self, p, fm):
        super().__init__()
        d = p["embedding_dim"]
        self.p = p
        self.backbone = nn.Module()
        bb = self.backbone
        bb.user = user_table(p, fm, d)
        bb.item = embedding(fm.vocab("item"), d)
        kind = p["backbone"]
        interest_dim = d
        if kind == "din":
            bb.attention = ActivationUnit(d, p.get("attention_hidden") or [36])
        elif kind == "gru4rec":
            interest_dim = p.get("hidden_size") or d
            bb.gru = nn.GRU(d, interest_dim, batch_first=True)
        else:
            bb.encoder = TransformerEncoder(
                d,
                p.get("heads") or 2,
                p.get("layers") or 1,
                p.get("ffn_dim") or 4 * d,
                p["dropout"],
                fm.max_len("hist"),
            )
        r = interest_dim + d * (2 if bb.user is not None else 1)
        self.shared_head = Mlp(r, p["hidden"], 1, p["dropout"])
        self.plugin_head = Mlp(r, p["plugin_hidden"], 1, p["dropout"])
        self.plugin_tail = Mlp(r, p["plugin_hidden"], 1, p["dropout"])
        self.register_buffer("phase", torch.zeros(()))
        self.plugins = False

    def loaded(self):
        """Called once the initial parameters are in: the phase they were saved in."""
        self.plugins = bool(self.phase.item() >= 0.5)

    def interest(self, b, t):
        bb = self.backbone
        hist = bb.item(b.hist)
        kind = self.p["backbone"]
        if kind == "din":
            a = bb.attention(hist, t) * b.hist_mask
            return (hist * a.unsqueeze(-1)).sum(1)
        if kind == "gru4rec":
            out, _ = bb.gru(hist)
            return last_state(out, b.hist_len)
        h = bb.encoder(hist, b.hist_mask)
        scores = (h @ t.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.p["embedding_dim"])
        a = masked_softmax(scores, b.hist_mask, 1)
        return (h * a.unsqueeze(-1)).sum(1)

    def forward(self, b):
        t = self.backbone.item(b.item)
        parts = [self.interest(b, t), t]
        if self.backbone.user is not None:
            parts.append(self.backbone.user(b.user))
        r = torch.cat(parts, -1)
        if not self.plugins:
            logits = self.shared_head(r).squeeze(-1)
        else:
            head = self.plugin_head(r).squeeze(-1)
            tail = self.plugin_tail(r).squeeze(-1)
            logits = torch.where(b.user_group == 2, head, tail)
        return {"ctr": bce_with_logits(logits, b)}


MODELS = {
    "basemodel": BaseModel,
    "popularity": Popularity,
    "lr": Lr,
    "gru4rec": Gru4Rec,
    "din": Din,
    "dien": Dien,
    "him": Him,
    "mind": Mind,
    "comirec-dr": lambda p, fm: ComiRec(p, fm, "dr"),
    "comirec-sa": lambda p, fm: ComiRec(p, fm, "sa"),
    "transformerrec": TransformerRec,
    "mfn": Mfn,
    "twotower": TwoTower,
    "pin": Pin,
}

# Models with a "lean" twin style (see build).
LEAN = {"twotower"}


def build(name, params, feature_map, style="eager"):
    """The twin of registered model `name` with its effective params. `style` "eager" writes the
    equations out (the attention softmax, eq. 4's softmax over the last axis) whatever kernel
    longtail's params name; "lean" is the twin a PyTorch user tuning the step writes: fused
    attention where longtail's params say `attention = "fused"`, eq. 4 in the product's layout.
    Only the models in LEAN have a lean style."""
    if name not in MODELS:
        raise ValueError(f"no PyTorch twin for model '{name}' (have: {', '.join(sorted(MODELS))})")
    if style == "eager":
        return MODELS[name](params, FeatureMap(feature_map))
    if style == "lean" and name in LEAN:
        return MODELS[name](params, FeatureMap(feature_map), lean=True)
    raise ValueError(f"no '{style}' twin for model '{name}' (lean twins: {', '.join(sorted(LEAN))})")
