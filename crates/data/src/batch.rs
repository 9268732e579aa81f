//! Fixed-shape host batches: what the training loop copies to the device.
//!
//! Every batch has exactly `size` rows so device shapes never change (a requirement for CUDA
//! graph capture); the last batch of an epoch is padded by repeating its first row with weight 0.
//! Repeating a real row rather than writing zeros keeps every padding row a valid input (real ids,
//! a non-empty history when the first row has one), so no masked softmax sees an all-masked row.
//!
//! Histories are ragged (CSR: `hist_offsets`, `hist_ids`), oldest first, most recent last, already
//! truncated to the most recent `max_hist_len` items; [`HostBatch::padded_history`] gives the
//! dense `[B, L]` form with a mask, and [`HostBatch::from_dense`] builds a batch from one
//! (TorchRec-style: zeros are padding).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ctr::{CtrSamples, UserSequences};
use crate::error::{DataError, Result};
use crate::sessions::{SessionBatch, Sessions};

/// One fixed-size batch in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// B: fixed batch size (rows >= `valid` are padding).
    pub size: usize,
    /// Number of real samples.
    pub valid: usize,
    /// [B]
    pub user: Vec<i64>,
    /// [B] target / candidate item.
    pub item: Vec<i64>,
    /// [B]
    pub label: Vec<f32>,
    /// [B] 1.0 for real rows, 0.0 for padding rows.
    pub weight: Vec<f32>,
    /// [B+1] ragged histories (CSR), most recent item last, truncated to `max_hist_len`.
    pub hist_offsets: Vec<i64>,
    pub hist_ids: Vec<i64>,
    pub max_hist_len: usize,
    /// [B] `UserGroup as u8`.
    pub user_group: Vec<u8>,
    /// [B] `ItemGroup as u8`.
    pub item_group: Vec<u8>,
    /// [B] log sampling probability of the target item (logQ correction); 0.0 when unknown.
    pub item_logq: Vec<f32>,
    /// HIM sessions of every row (`[B, S, n]`), when the dataset has a session config.
    pub sessions: Option<SessionBatch>,
}

impl HostBatch {
    /// The histories as a dense `[B * max_hist_len]` id matrix, left-aligned (oldest first, zeros
    /// after the last real item), and the matching 0/1 mask.
    pub fn padded_history(&self) -> (Vec<i64>, Vec<f32>) {
        let l = self.max_hist_len;
        let mut ids = vec![0i64; self.size * l];
        let mut mask = vec![0f32; self.size * l];
        for r in 0..self.size {
            let (a, b) = self.hist_range(r);
            let row = &self.hist_ids[a..b];
            // A row longer than L (only possible in a hand-built batch) keeps its most recent items.
            let row = &row[row.len().saturating_sub(l)..];
            ids[r * l..r * l + row.len()].copy_from_slice(row);
            mask[r * l..r * l + row.len()].fill(1.0);
        }
        (ids, mask)
    }

    /// History of row `r` as a slice of `hist_ids` (empty when offsets are out of range).
    pub fn history(&self, r: usize) -> &[i64] {
        let (a, b) = self.hist_range(r);
        &self.hist_ids[a..b]
    }

    fn hist_range(&self, r: usize) -> (usize, usize) {
        let get = |i: usize| {
            self.hist_offsets
                .get(i)
                .and_then(|&x| usize::try_from(x).ok())
        };
        match (get(r), get(r + 1)) {
            (Some(a), Some(b)) if a <= b && b <= self.hist_ids.len() => (a, b),
            _ => (0, 0),
        }
    }

    /// A batch from plain dense arrays (TorchRec-style): `hist[r]` is row r's history where zeros
    /// are padding and are dropped (the other ids keep their order). `max_hist_len` is the length
    /// of the longest row, padding included, so `padded_history` of the result has the same width.
    /// All rows are real (weight 1); groups and logQ are 0.
    pub fn from_dense(
        user: Vec<i64>,
        item: Vec<i64>,
        label: Vec<f32>,
        hist: &[Vec<i64>],
    ) -> Result<HostBatch> {
        let b = user.len();
        for (name, len) in [
            ("item", item.len()),
            ("label", label.len()),
            ("hist", hist.len()),
        ] {
            if len != b {
                return Err(DataError::Invalid(format!(
                    "HostBatch::from_dense: '{name}' has {len} rows but 'user' has {b}"
                )));
            }
        }
        for (name, col) in [("user", &user), ("item", &item)] {
            if let Some(r) = col.iter().position(|&x| x < 0) {
                return Err(DataError::Invalid(format!(
                    "HostBatch::from_dense: '{name}' row {r} has negative id {}",
                    col[r]
                )));
            }
        }
        let mut hist_offsets = Vec::with_capacity(b + 1);
        let mut hist_ids = Vec::new();
        hist_offsets.push(0);
        for (r, row) in hist.iter().enumerate() {
            for &x in row {
                if x < 0 {
                    return Err(DataError::Invalid(format!(
                        "HostBatch::from_dense: hist row {r} has negative id {x}"
                    )));
                }
                if x != 0 {
                    hist_ids.push(x);
                }
            }
            hist_offsets.push(hist_ids.len() as i64);
        }
        let batch = HostBatch {
            size: b,
            valid: b,
            user,
            item,
            label,
            weight: vec![1.0; b],
            hist_offsets,
            hist_ids,
            max_hist_len: hist.iter().map(Vec::len).max().unwrap_or(0),
            user_group: vec![0; b],
            item_group: vec![0; b],
            item_logq: vec![0.0; b],
            sessions: None,
        };
        batch.validate()?;
        Ok(batch)
    }

    /// Checks that every column has `size` rows, offsets are a valid CSR of `hist_ids` with rows
    /// no longer than `max_hist_len`, and `valid <= size`.
    pub fn validate(&self) -> Result<()> {
        let b = self.size;
        let bad = |m: String| Err(DataError::Invalid(format!("HostBatch: {m}")));
        for (name, len) in [
            ("user", self.user.len()),
            ("item", self.item.len()),
            ("label", self.label.len()),
            ("weight", self.weight.len()),
            ("user_group", self.user_group.len()),
            ("item_group", self.item_group.len()),
            ("item_logq", self.item_logq.len()),
        ] {
            if len != b {
                return bad(format!("'{name}' has {len} rows, expected size {b}"));
            }
        }
        if self.valid > b {
            return bad(format!("valid {} > size {b}", self.valid));
        }
        if self.hist_offsets.len() != b + 1 {
            return bad(format!(
                "hist_offsets has {} entries, expected {}",
                self.hist_offsets.len(),
                b + 1
            ));
        }
        if self.hist_offsets.first() != Some(&0) {
            return bad("hist_offsets must start at 0".into());
        }
        for r in 0..b {
            let len = self.hist_offsets[r + 1] - self.hist_offsets[r];
            if len < 0 {
                return bad(format!("hist_offsets decrease at row {r}"));
            }
            if len as usize > self.max_hist_len {
                return bad(format!(
                    "history of row {r} has {len} items > max_hist_len {}",
                    self.max_hist_len
                ));
            }
        }
        if self.hist_offsets.last().copied() != Some(self.hist_ids.len() as i64) {
            return bad(format!(
                "hist_offsets end at {:?} but hist_ids has {} ids",
                self.hist_offsets.last(),
                self.hist_ids.len()
            ));
        }
        if let Some(sb) = &self.sessions {
            let want = b * sb.num_sessions * sb.top_n;
            for (name, len) in [
                ("sessions.pos_items", sb.pos_items.len()),
                ("sessions.pos_counts", sb.pos_counts.len()),
                ("sessions.neg_items", sb.neg_items.len()),
                ("sessions.neg_counts", sb.neg_counts.len()),
            ] {
                if sb.batch_size != b || len != want {
                    return bad(format!(
                        "'{name}' has {len} values for batch {} (expected {b} x {} x {})",
                        sb.batch_size, sb.num_sessions, sb.top_n
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Log sampling probability of each item, `ln(freq / total)`, for logQ correction. Unseen items
/// (and padding 0) get the floor `ln(0.5 / total)` so every entry is finite; with no counts at all
/// every item gets the uniform `ln(1 / n)`.
pub fn item_logq(item_freq: &[u64]) -> Vec<f32> {
    let total: f64 = item_freq.iter().map(|&f| f as f64).sum();
    if total <= 0.0 {
        let u = -(item_freq.len().max(1) as f64).ln() as f32;
        return vec![u; item_freq.len()];
    }
    item_freq
        .iter()
        .map(|&f| ((f as f64).max(0.5) / total).ln() as f32)
        .collect()
}

/// Iterates fixed-size batches over samples, optionally in a seeded random order.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    samples: &'a CtrSamples,
    seqs: &'a UserSequences,
    batch_size: usize,
    max_hist_len: usize,
    order: Option<Vec<usize>>,
    item_logq: Option<&'a [f32]>,
    sessions: Option<(&'a Sessions, &'a UserSequences)>,
    next: usize,
}

impl<'a> BatchIter<'a> {
    /// Batches of `batch_size` rows over `samples`. `shuffle_seed: Some(s)` visits the samples in
    /// a permutation fixed by `s` (derive it per epoch, e.g. `derive_seed(seed, "shuffle/epoch3")`);
    /// `None` keeps their order. `item_logq[item]` fills `HostBatch::item_logq` (0.0 without it or
    /// for an item outside it). A `batch_size` of 0 yields no batches; use [`BatchIter::try_new`]
    /// to have bad arguments reported instead.
    pub fn new(
        samples: &'a CtrSamples,
        seqs: &'a UserSequences,
        batch_size: usize,
        max_hist_len: usize,
        shuffle_seed: Option<u64>,
        item_logq: Option<&'a [f32]>,
    ) -> BatchIter<'a> {
        let order = shuffle_seed.map(|s| {
            let mut o: Vec<usize> = (0..samples.len()).collect();
            o.shuffle(&mut ChaCha8Rng::seed_from_u64(s));
            o
        });
        BatchIter {
            samples,
            seqs,
            batch_size,
            max_hist_len,
            order,
            item_logq,
            sessions: None,
            next: 0,
        }
    }

    /// Visits the samples in `order` (indices into the samples; e.g. a stratified interleaving)
    /// instead of the constructor's order.
    pub fn with_order(mut self, order: Vec<usize>) -> Self {
        self.order = Some(order);
        self
    }

    /// Adds HIM sessions to every batch: positives from the iterator's sequences, negative
    /// feedback from `negative_feedback`, windows relative to each sample's time.
    pub fn with_sessions(
        mut self,
        sessions: &'a Sessions,
        negative_feedback: &'a UserSequences,
    ) -> Self {
        self.sessions = Some((sessions, negative_feedback));
        self
    }

    /// Like [`BatchIter::new`], but checks the arguments: `batch_size >= 1`, consistent sample
    /// columns, users and histories inside `seqs`, items inside `item_logq`.
    pub fn try_new(
        samples: &'a CtrSamples,
        seqs: &'a UserSequences,
        batch_size: usize,
        max_hist_len: usize,
        shuffle_seed: Option<u64>,
        item_logq: Option<&'a [f32]>,
    ) -> Result<BatchIter<'a>> {
        if batch_size == 0 {
            return Err(DataError::config("batch_size", "must be >= 1"));
        }
        let n = samples.len();
        for (name, len) in [
            ("item", samples.item.len()),
            ("label", samples.label.len()),
            ("ts", samples.ts.len()),
            ("hist_end", samples.hist_end.len()),
            ("user_group", samples.user_group.len()),
            ("item_group", samples.item_group.len()),
        ] {
            if len != n {
                return Err(DataError::Invalid(format!(
                    "CtrSamples: '{name}' has {len} rows but 'user' has {n}"
                )));
            }
        }
        for s in 0..n {
            let u = samples.user[s];
            if u as usize >= seqs.num_users() {
                return Err(DataError::Invalid(format!(
                    "sample {s}: user {u} is outside the sequences (num_users {})",
                    seqs.num_users()
                )));
            }
            if samples.hist_end[s] as usize > seqs.seq(u).len() {
                return Err(DataError::Invalid(format!(
                    "sample {s}: hist_end {} exceeds user {u}'s sequence length {}",
                    samples.hist_end[s],
                    seqs.seq(u).len()
                )));
            }
            if let Some(q) = item_logq {
                if samples.item[s] as usize >= q.len() {
                    return Err(DataError::Invalid(format!(
                        "sample {s}: item {} is outside item_logq (len {})",
                        samples.item[s],
                        q.len()
                    )));
                }
            }
        }
        Ok(Self::new(
            samples,
            seqs,
            batch_size,
            max_hist_len,
            shuffle_seed,
            item_logq,
        ))
    }

    /// Number of batches per pass.
    pub fn num_batches(&self) -> usize {
        if self.batch_size == 0 {
            0
        } else {
            self.samples.len().div_ceil(self.batch_size)
        }
    }

    /// Batch number `b` of the pass, independent of the iterator's position (lets several
    /// threads build batches ahead of the training step).
    pub fn batch(&self, b: usize) -> Option<HostBatch> {
        if b >= self.num_batches() {
            return None;
        }
        let bs = self.batch_size;
        let s = self.samples;
        let start = b * bs;
        let valid = (start + bs).min(s.len()) - start;
        let sample_at = |r: usize| {
            let k = start + if r < valid { r } else { 0 };
            self.order
                .as_ref()
                .and_then(|o| o.get(k).copied())
                .unwrap_or(k)
        };
        let mut out = HostBatch {
            size: bs,
            valid,
            user: Vec::with_capacity(bs),
            item: Vec::with_capacity(bs),
            label: Vec::with_capacity(bs),
            weight: Vec::with_capacity(bs),
            hist_offsets: Vec::with_capacity(bs + 1),
            hist_ids: Vec::with_capacity(bs * self.max_hist_len.min(64)),
            max_hist_len: self.max_hist_len,
            user_group: Vec::with_capacity(bs),
            item_group: Vec::with_capacity(bs),
            item_logq: Vec::with_capacity(bs),
            sessions: None,
        };
        out.hist_offsets.push(0);
        for r in 0..bs {
            let i = sample_at(r);
            let user = s.user.get(i).copied().unwrap_or(0);
            let item = s.item.get(i).copied().unwrap_or(0);
            out.user.push(i64::from(user));
            out.item.push(i64::from(item));
            out.label.push(s.label.get(i).copied().unwrap_or(0.0));
            out.weight.push(if r < valid { 1.0 } else { 0.0 });
            out.user_group
                .push(s.user_group.get(i).copied().unwrap_or(0));
            out.item_group
                .push(s.item_group.get(i).copied().unwrap_or(0));
            out.item_logq.push(
                self.item_logq
                    .and_then(|q| q.get(item as usize).copied())
                    .unwrap_or(0.0),
            );
            let seq = self.seqs.seq(user);
            let end = (s.hist_end.get(i).copied().unwrap_or(0) as usize).min(seq.len());
            let from = end.saturating_sub(self.max_hist_len);
            out.hist_ids
                .extend(seq[from..end].iter().map(|&x| i64::from(x)));
            out.hist_offsets.push(out.hist_ids.len() as i64);
        }
        if let Some((sess, neg)) = self.sessions {
            // Sessions of each row at the row's time: strictly earlier feedback only.
            out.sessions = Some(sess.fill_batch((0..bs).map(|r| {
                let i = sample_at(r);
                let user = s.user.get(i).copied().unwrap_or(0);
                (
                    self.seqs.seq(user),
                    self.seqs.seq_ts(user),
                    neg.seq(user),
                    neg.seq_ts(user),
                    s.ts.get(i).copied().unwrap_or(0),
                )
            })));
        }
        Some(out)
    }
}

impl Iterator for BatchIter<'_> {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        let b = self.batch(self.next)?;
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_batches().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// The batches of one pass (a training epoch), buildable by number from any thread, so a
/// background thread can build them ahead of the step ([`prefetch_batches`]). CTR samples
/// ([`BatchIter`]) and retrieval sequences ([`crate::SeqBatches`]) are sources; a new task's
/// batches are one more.
pub trait BatchSource: Sync {
    /// Batches in the pass.
    fn num_batches(&self) -> usize;
    /// Batch number `b` (`b < num_batches()`), independent of any other.
    fn build(&self, b: usize) -> Result<HostBatch>;
}

impl BatchSource for BatchIter<'_> {
    fn num_batches(&self) -> usize {
        BatchIter::num_batches(self)
    }

    fn build(&self, b: usize) -> Result<HostBatch> {
        self.batch(b).ok_or_else(|| {
            DataError::Invalid(format!(
                "batch {b} is past the pass's {} batches",
                BatchIter::num_batches(self)
            ))
        })
    }
}

/// Runs `consume` on every batch of `source` in order while a background thread builds the next
/// `depth` batches (bounded channel: at most `depth` built batches wait in memory). The batch
/// building overlaps the consumer's work (e.g. a training step on the GPU). The first error,
/// from building (returned after the batches before it were consumed) or from `consume`, stops
/// the producer and is returned.
pub fn prefetch_batches<E: From<DataError>>(
    source: &(impl BatchSource + ?Sized),
    depth: usize,
    mut consume: impl FnMut(HostBatch) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<HostBatch>>(depth.max(1));
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for b in 0..source.num_batches() {
                let batch = source.build(b);
                let failed = batch.is_err();
                // A closed channel means the consumer stopped: stop building.
                if tx.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        // Owned by this closure, `rx` is dropped when it returns (also on an error), which ends
        // the producer at its next send before the scope joins it.
        let rx = rx;
        for batch in rx.iter() {
            consume(batch?)?;
        }
        Ok(())
    })
}

/// Streams a prepared samples file (`samples/{split}.parquet`) in file order as fixed-size
/// batches without loading the file: a background thread reads one record batch at a time
/// ([`crate::frame::FrameReader`]), cuts it into `batch_size` rows (carrying the remainder over)
/// and keeps at most `depth` batches ahead of `consume`. The last batch is padded like
/// [`BatchIter`]'s (weight 0 rows). Read errors are returned after the batches before them.
pub fn stream_sample_batches(
    path: &std::path::Path,
    seqs: &UserSequences,
    batch_size: usize,
    max_hist_len: usize,
    depth: usize,
    mut consume: impl FnMut(HostBatch) -> Result<()>,
) -> Result<()> {
    if batch_size == 0 {
        return Err(DataError::config("batch_size", "must be >= 1"));
    }
    let mut reader = crate::frame::FrameReader::open(path, &crate::prepare::SAMPLE_COLUMNS)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<HostBatch>>(depth.max(1));
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut pending = CtrSamples::default();
            let emit = |s: &CtrSamples| -> Result<HostBatch> {
                BatchIter::try_new(s, seqs, batch_size, max_hist_len, None, None)?
                    .batch(0)
                    .ok_or_else(|| DataError::Invalid("empty batch".into()))
            };
            loop {
                let chunk = match reader.next_chunk() {
                    Ok(Some(mut f)) => crate::prepare::samples_from_frame(&mut f, path),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let mut chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                pending.append(&mut chunk);
                while pending.len() >= batch_size {
                    let rest = pending.split_off(batch_size);
                    let out = emit(&pending);
                    pending = rest;
                    let failed = out.is_err();
                    if tx.send(out).is_err() || failed {
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = tx.send(emit(&pending));
            }
        });
        let rx = rx; // dropped on return: see prefetch_batches
        for batch in rx.iter() {
            consume(batch?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users 1 and 2 with sequences [10, 11, 12, 13, 14] and [20]; 5 samples.
    fn fixture() -> (CtrSamples, UserSequences) {
        let seqs = UserSequences {
            offsets: vec![0, 0, 5, 6],
            items: vec![10, 11, 12, 13, 14, 20],
            ts: vec![1, 2, 3, 4, 5, 6],
        };
        let samples = CtrSamples {
            user: vec![1, 1, 1, 2, 2],
            item: vec![14, 3, 12, 20, 7],
            label: vec![1.0, 0.0, 1.0, 1.0, 0.0],
            ts: vec![5, 5, 3, 6, 6],
            hist_end: vec![4, 4, 2, 0, 0],
            user_group: vec![2, 2, 2, 0, 0],
            item_group: vec![1, 0, 1, 0, 0],
        };
        (samples, seqs)
    }

    #[test]
    fn last_batch_is_padded_and_histories_truncated() {
        let (s, q) = fixture();
        let logq = item_logq(&{
            let mut f = vec![0u64; 21];
            f[14] = 3;
            f[3] = 1;
            f
        });
        let it = BatchIter::try_new(&s, &q, 2, 3, None, Some(&logq)).unwrap();
        assert_eq!(it.num_batches(), 3);
        let batches: Vec<HostBatch> = it.collect();
        assert_eq!(batches.len(), 3);
        for b in &batches {
            b.validate().unwrap();
            assert_eq!(b.size, 2);
        }
        let b0 = &batches[0];
        assert_eq!(b0.valid, 2);
        // Sample 0: history [10..14) truncated to the 3 most recent items.
        assert_eq!(b0.history(0), &[11, 12, 13]);
        assert_eq!(b0.history(1), &[11, 12, 13]);
        assert_eq!(b0.item, vec![14, 3]);
        assert!((b0.item_logq[0] - (3.0f32 / 4.0).ln()).abs() < 1e-6);
        assert!((b0.item_logq[1] - (1.0f32 / 4.0).ln()).abs() < 1e-6);
        assert_eq!(batches[1].history(0), &[10, 11]);
        assert_eq!(batches[1].history(1), &[] as &[i64]);

        let last = &batches[2];
        assert_eq!(last.valid, 1);
        assert_eq!(last.weight, vec![1.0, 0.0]);
        assert_eq!(last.user, vec![2, 2]);
        assert_eq!(
            last.item,
            vec![7, 7],
            "padding repeats the batch's first row"
        );

        let (ids, mask) = b0.padded_history();
        assert_eq!(ids, vec![11, 12, 13, 11, 12, 13]);
        assert_eq!(mask, vec![1.0; 6]);
        let (ids, mask) = batches[1].padded_history();
        assert_eq!(ids, vec![10, 11, 0, 0, 0, 0]);
        assert_eq!(mask, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn from_dense_round_trip() {
        let (s, q) = fixture();
        let b = BatchIter::new(&s, &q, 5, 4, None, None).next().unwrap();
        let (ids, _) = b.padded_history();
        let rows: Vec<Vec<i64>> = ids.chunks(4).map(<[i64]>::to_vec).collect();
        let back =
            HostBatch::from_dense(b.user.clone(), b.item.clone(), b.label.clone(), &rows).unwrap();
        assert_eq!(back.hist_offsets, b.hist_offsets);
        assert_eq!(back.hist_ids, b.hist_ids);
        assert_eq!(back.max_hist_len, 4);
        assert_eq!(back.padded_history(), b.padded_history());

        let e = HostBatch::from_dense(vec![1], vec![2, 3], vec![1.0], &[vec![]]).unwrap_err();
        assert!(e.to_string().contains("'item' has 2 rows"), "{e}");
        assert!(HostBatch::from_dense(vec![1], vec![2], vec![1.0], &[vec![-1]]).is_err());
        // Zeros anywhere are padding.
        let d = HostBatch::from_dense(vec![1], vec![2], vec![1.0], &[vec![0, 5, 0, 6]]).unwrap();
        assert_eq!(d.hist_ids, vec![5, 6]);
        assert_eq!(d.max_hist_len, 4);
    }

    #[test]
    fn validate_catches_inconsistent_batches() {
        let (s, q) = fixture();
        let good = BatchIter::new(&s, &q, 2, 3, None, None).next().unwrap();
        let mut b = good.clone();
        b.label.pop();
        assert!(b.validate().is_err());
        let mut b = good.clone();
        b.max_hist_len = 2;
        assert!(b.validate().is_err());
        let mut b = good;
        b.hist_offsets[2] += 1;
        assert!(b.validate().is_err());
    }

    #[test]
    fn shuffles_are_deterministic_permutations() {
        let n = 103;
        let s = CtrSamples {
            user: vec![1; n],
            item: (1..=n as u32).collect(),
            label: vec![1.0; n],
            ts: vec![0; n],
            hist_end: vec![0; n],
            user_group: vec![0; n],
            item_group: vec![0; n],
        };
        let q = UserSequences {
            offsets: vec![0, 0, 0],
            items: vec![],
            ts: vec![],
        };
        let items = |seed: Option<u64>| -> Vec<i64> {
            BatchIter::new(&s, &q, 10, 5, seed, None)
                .flat_map(|b| b.item[..b.valid].to_vec())
                .collect()
        };
        let a = items(Some(1));
        assert_eq!(a, items(Some(1)));
        assert_ne!(a, items(Some(2)));
        let plain = items(None);
        assert_eq!(plain, (1..=n as i64).collect::<Vec<_>>());
        assert_ne!(a, plain);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, plain);
    }

    #[test]
    fn bad_arguments() {
        let (s, q) = fixture();
        assert_eq!(BatchIter::new(&s, &q, 0, 3, None, None).count(), 0);
        assert!(BatchIter::try_new(&s, &q, 0, 3, None, None).is_err());
        let short = [0.0f32; 5];
        let e = BatchIter::try_new(&s, &q, 2, 3, None, Some(&short)).unwrap_err();
        assert!(e.to_string().contains("item 14"), "{e}");
        let mut bad = s.clone();
        bad.hist_end[3] = 2;
        assert!(BatchIter::try_new(&bad, &q, 2, 3, None, None).is_err());
    }

    #[test]
    fn logq_is_finite_and_ordered() {
        let q = item_logq(&[0, 5, 1, 0]);
        assert!(q.iter().all(|x| x.is_finite()));
        assert!(q[1] > q[2] && q[2] > q[3]);
        assert_eq!(item_logq(&[0, 0]), vec![-(2f32.ln()); 2]);
    }
}
