//! HIM reorganization layer: time-window sessions with frequency-ranked feedback.
//!
//! Paper: "Hybrid Interest Modeling for Long-tailed Users" (HIM), §3.1 "Reorganization Layer"
//! and §4.1 "Experimental Setup". For each CTR sample at target time `t`, a user's earlier
//! positive and negative feedback is split into `T` sessions (time bands), and inside each
//! session the items are re-ranked by interaction frequency instead of temporal order; the top
//! `n` items of each session are kept with their frequencies (the `f^i_j` of HIM eq. 1).
//!
//! # Rules
//!
//! * **Units.** Timestamps are `i64` seconds (the unit of [`crate::Interactions::ts`]). A window
//!   is `<positive integer><unit>` with unit `s` (second), `min` (minute), `h` (hour), `d` (day =
//!   86 400 s), `w` (week = 7 d), `m` (month = **30 days**), `y` (year = **365 days**), or the
//!   literal `all` (unbounded). Months and years are fixed lengths, not calendar months, so a
//!   window is a plain number of seconds independent of the date. No whitespace, no sign, case
//!   sensitive. A length that overflows `i64` seconds is an error, and so is a zero length.
//! * **Bands.** Windows `w_0 < w_1 < ... < w_{T-1}` are *cumulative look-backs* that define
//!   *disjoint* bands, as in the paper's `{14d, 6m, 12m, all}` example: session 0 is
//!   `[t - w_0, t)`, session `s > 0` is `[t - w_s, t - w_{s-1})`, and `all` (allowed only as the
//!   last entry) is `(-inf, t - w_{T-2})`. Lower bounds are inclusive, upper bounds exclusive: an
//!   event at exactly `t - 14d` belongs to session 0. Everything is **strictly before `t`**: an
//!   event at `t` or later is never used. Without a final `all`, events older than `t - w_{T-1}`
//!   are dropped (the industrial setting `{3d, 7d, 14d, 30d}`). `t - w` saturates at `i64::MIN`.
//!   Windows must be strictly increasing (no duplicates, sorted).
//! * **Ranking.** Positive and negative feedback are handled separately and identically. In a
//!   session, an item's count is the number of its occurrences (same item id) in that session's
//!   band. Items are ordered by count descending; ties by most recent occurrence first (larger
//!   maximum timestamp within the band); remaining ties by smaller item id. The order is therefore
//!   fully deterministic and independent of the order of equal-timestamp events in the input.
//! * **Truncation and padding.** The first `top_n` items are kept with their counts (as `f32`);
//!   a session with fewer distinct items is padded with item `0` (the crate's padding id; real
//!   ids start at 1) and count `0.0`. Outputs are session-major: session `s`, slot `j` is at
//!   index `s * top_n + j`; a batch ([`SessionBatch`]) is `[B, S, n]` flattened row-major.
//! * **Input.** One user's feedback as parallel slices `(items, ts)` in chronological order
//!   (ascending `ts`; equal timestamps allowed). Band boundaries are found by binary search, so
//!   the cost per call is `O(T log h + k log k)` for a history of `h` events of which `k` fall in
//!   the sessions, not `O(h)`. Unsorted input does not panic but gives unspecified sessions.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

const WINDOWS_KEY: &str = "sessions.windows";
const TOP_N_KEY: &str = "sessions.top_n";
const VALID_UNITS: &str =
    "valid: <positive integer><unit> with unit s, min, h, d, w, m (30 days), y (365 days), or 'all'";

/// Configuration of the HIM reorganization layer (defaults in brackets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Cumulative look-back windows, strictly increasing, `all` only last
    /// \[`["14d", "6m", "12m", "all"]`, the paper's Musical Instruments setting\].
    pub windows: Vec<String>,
    /// Items kept per session and feedback kind (the paper's `n`) \[10\].
    pub top_n: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            windows: ["14d", "6m", "12m", "all"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            top_n: 10,
        }
    }
}

impl SessionConfig {
    /// Checks the windows and `top_n`; see the module docs for the rules.
    pub fn validate(&self) -> Result<()> {
        self.bounds().map(|_| ())
    }

    /// Validates and returns the window lengths in seconds (`None` = all).
    fn bounds(&self) -> Result<Vec<Option<i64>>> {
        if self.windows.is_empty() {
            return Err(DataError::config(
                WINDOWS_KEY,
                "the window list is empty; give at least one window, e.g. [\"14d\", \"all\"]",
            ));
        }
        let bounds = self
            .windows
            .iter()
            .map(|w| parse_window(w))
            .collect::<Result<Vec<_>>>()?;
        let last = bounds.len() - 1;
        for (i, b) in bounds.iter().enumerate() {
            match b {
                None if i != last => {
                    return Err(DataError::config(
                        WINDOWS_KEY,
                        format!(
                            "'all' must be the last window, found at position {i} of {:?}",
                            self.windows
                        ),
                    ))
                }
                Some(w) if i > 0 => {
                    // bounds[i - 1] is Some: a None before `last` was rejected above.
                    let prev = bounds[i - 1].unwrap_or(i64::MAX);
                    if *w <= prev {
                        return Err(DataError::config(
                            WINDOWS_KEY,
                            format!(
                                "windows must be strictly increasing: '{}' is not longer than \
                                 '{}' in {:?}",
                                self.windows[i],
                                self.windows[i - 1],
                                self.windows
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        if self.top_n == 0 {
            return Err(DataError::config(TOP_N_KEY, "must be >= 1"));
        }
        if bounds.len().checked_mul(self.top_n).is_none() {
            return Err(DataError::config(
                TOP_N_KEY,
                format!(
                    "{} sessions x {} items overflows usize",
                    bounds.len(),
                    self.top_n
                ),
            ));
        }
        Ok(bounds)
    }
}

/// Parses one window: `<positive integer><unit>` into seconds, or `all` into `None`.
///
/// Units: `s` = 1, `min` = 60, `h` = 3 600, `d` = 86 400, `w` = 7 d, `m` = 30 d, `y` = 365 d.
/// Errors (config key `sessions.windows`, message quoting the entry and listing the valid units)
/// on a missing or zero number, an unknown unit, or a length that overflows `i64` seconds.
pub fn parse_window(s: &str) -> Result<Option<i64>> {
    if s == "all" {
        return Ok(None);
    }
    let bad =
        |why: &str| DataError::config(WINDOWS_KEY, format!("window '{s}': {why}; {VALID_UNITS}"));
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad("missing the leading number"));
    }
    let unit_secs: i64 = match unit {
        "s" => 1,
        "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        "y" => 365 * 86_400,
        "" => return Err(bad("missing the unit")),
        _ => return Err(bad(&format!("unknown unit '{unit}'"))),
    };
    let value: i64 = digits
        .parse()
        .map_err(|_| bad("the number overflows i64"))?;
    if value == 0 {
        return Err(bad("zero-length window"));
    }
    let secs = value
        .checked_mul(unit_secs)
        .ok_or_else(|| bad("the length in seconds overflows i64"))?;
    Ok(Some(secs))
}

/// The output of [`Sessions::fill`] for one sample, reusable across rows.
///
/// Each vector has length `num_sessions * top_n`, session-major (session `s`, slot `j` at
/// `s * top_n + j`). Padding slots hold item 0 and count 0.0.
#[derive(Debug, Clone, Default)]
pub struct SessionSlots {
    /// Positive feedback items, ranked per session.
    pub pos_items: Vec<u32>,
    /// Occurrence counts of `pos_items` in their session.
    pub pos_counts: Vec<f32>,
    /// Negative feedback items, ranked per session.
    pub neg_items: Vec<u32>,
    /// Occurrence counts of `neg_items` in their session.
    pub neg_counts: Vec<f32>,
    scratch: Scratch,
}

/// Reusable buffers of the sort-based counting.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// (item, ts) of one band.
    events: Vec<(u32, i64)>,
    /// (item, count, most recent ts) of one band.
    agg: Vec<(u32, u32, i64)>,
}

impl SessionSlots {
    /// Slots for `num_sessions` sessions of `top_n` items each, all padding.
    pub fn new(num_sessions: usize, top_n: usize) -> Self {
        let mut s = SessionSlots::default();
        s.reset(num_sessions * top_n);
        s
    }

    /// Resizes every vector to `len` and fills it with padding.
    fn reset(&mut self, len: usize) {
        for v in [&mut self.pos_items, &mut self.neg_items] {
            v.clear();
            v.resize(len, 0);
        }
        for v in [&mut self.pos_counts, &mut self.neg_counts] {
            v.clear();
            v.resize(len, 0.0);
        }
    }
}

/// A batch of session slots, `[B, S, n]` flattened row-major (row `b`, session `s`, slot `j` at
/// `(b * S + s) * n + j`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionBatch {
    /// B: number of rows.
    pub batch_size: usize,
    /// S: sessions per row.
    pub num_sessions: usize,
    /// n: items per session.
    pub top_n: usize,
    /// [B, S, n] positive items.
    pub pos_items: Vec<u32>,
    /// [B, S, n] positive counts.
    pub pos_counts: Vec<f32>,
    /// [B, S, n] negative items.
    pub neg_items: Vec<u32>,
    /// [B, S, n] negative counts.
    pub neg_counts: Vec<f32>,
}

/// One sample's input to [`Sessions::fill_batch`]: `(pos_items, pos_ts, neg_items, neg_ts, t)`,
/// one user's chronological feedback and the sample's target time.
pub type SessionRow<'a> = (&'a [u32], &'a [i64], &'a [u32], &'a [i64], i64);

/// The validated reorganization layer; see the module docs for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Sessions {
    bounds: Vec<Option<i64>>,
    top_n: usize,
}

impl Sessions {
    /// Validates `cfg` and builds the layer.
    pub fn new(cfg: &SessionConfig) -> Result<Sessions> {
        Ok(Sessions {
            bounds: cfg.bounds()?,
            top_n: cfg.top_n,
        })
    }

    /// T: the number of sessions.
    pub fn num_sessions(&self) -> usize {
        self.bounds.len()
    }

    /// n: the items kept per session and feedback kind.
    pub fn top_n(&self) -> usize {
        self.top_n
    }

    /// The cumulative look-back of each session in seconds (`None` = all, only last).
    pub fn bounds(&self) -> &[Option<i64>] {
        &self.bounds
    }

    /// `num_sessions * top_n`: the length of each vector of [`SessionSlots`].
    pub fn slot_len(&self) -> usize {
        self.bounds.len() * self.top_n
    }

    /// Slots shaped for this layer.
    pub fn new_slots(&self) -> SessionSlots {
        SessionSlots::new(self.num_sessions(), self.top_n)
    }

    /// Fills `out` (overwritten entirely; resized if its shape differs) with the sessions of one
    /// user at target time `t`. `pos_*` and `neg_*` are the user's positive and negative
    /// feedback, each in ascending `ts` order.
    ///
    /// # Panics
    /// If an items slice and its ts slice differ in length.
    pub fn fill(
        &self,
        pos_items: &[u32],
        pos_ts: &[i64],
        neg_items: &[u32],
        neg_ts: &[i64],
        t: i64,
        out: &mut SessionSlots,
    ) {
        assert_eq!(
            pos_items.len(),
            pos_ts.len(),
            "pos_items and pos_ts differ in length"
        );
        assert_eq!(
            neg_items.len(),
            neg_ts.len(),
            "neg_items and neg_ts differ in length"
        );
        debug_assert!(
            pos_ts.windows(2).all(|w| w[0] <= w[1]),
            "pos_ts not ascending"
        );
        debug_assert!(
            neg_ts.windows(2).all(|w| w[0] <= w[1]),
            "neg_ts not ascending"
        );
        out.reset(self.slot_len());
        let SessionSlots {
            pos_items: pi,
            pos_counts: pc,
            neg_items: ni,
            neg_counts: nc,
            scratch,
        } = out;
        self.fill_side(pos_items, pos_ts, t, pi, pc, scratch);
        self.fill_side(neg_items, neg_ts, t, ni, nc, scratch);
    }

    /// Fills the sessions of a batch of rows into `[B, S, n]` arrays.
    pub fn fill_batch<'a>(&self, rows: impl IntoIterator<Item = SessionRow<'a>>) -> SessionBatch {
        let mut batch = SessionBatch {
            num_sessions: self.num_sessions(),
            top_n: self.top_n,
            ..SessionBatch::default()
        };
        let mut slots = self.new_slots();
        for (pi, pt, ni, nt, t) in rows {
            self.fill(pi, pt, ni, nt, t, &mut slots);
            batch.pos_items.extend_from_slice(&slots.pos_items);
            batch.pos_counts.extend_from_slice(&slots.pos_counts);
            batch.neg_items.extend_from_slice(&slots.neg_items);
            batch.neg_counts.extend_from_slice(&slots.neg_counts);
            batch.batch_size += 1;
        }
        batch
    }

    /// One feedback kind: bands by binary search, then frequency ranking per band.
    fn fill_side(
        &self,
        items: &[u32],
        ts: &[i64],
        t: i64,
        out_items: &mut [u32],
        out_counts: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let n = self.top_n;
        // End (exclusive) of the current band: first event at or after the band's upper bound.
        let mut hi = ts.partition_point(|&x| x < t);
        for (s, bound) in self.bounds.iter().enumerate() {
            let lo = match bound {
                Some(w) => {
                    let start = t.saturating_sub(*w);
                    ts[..hi].partition_point(|&x| x < start)
                }
                None => 0,
            };
            rank_band(
                &items[lo..hi],
                &ts[lo..hi],
                n,
                &mut out_items[s * n..(s + 1) * n],
                &mut out_counts[s * n..(s + 1) * n],
                scratch,
            );
            hi = lo;
        }
    }
}

/// Ranks one band's items (count desc, most recent desc, item asc) and writes the top
/// `out_items.len()` into the (already padded) outputs.
fn rank_band(
    items: &[u32],
    ts: &[i64],
    n: usize,
    out_items: &mut [u32],
    out_counts: &mut [f32],
    scratch: &mut Scratch,
) {
    if items.is_empty() {
        return;
    }
    let Scratch { events, agg } = scratch;
    events.clear();
    events.extend(items.iter().copied().zip(ts.iter().copied()));
    events.sort_unstable_by_key(|&(item, _)| item);
    agg.clear();
    for &(item, when) in events.iter() {
        match agg.last_mut() {
            Some((last, count, recent)) if *last == item => {
                *count += 1;
                *recent = (*recent).max(when);
            }
            _ => agg.push((item, 1, when)),
        }
    }
    let order = |a: &(u32, u32, i64), b: &(u32, u32, i64)| {
        b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0))
    };
    if agg.len() > n {
        agg.select_nth_unstable_by(n - 1, order);
        agg.truncate(n);
    }
    agg.sort_unstable_by(order);
    for (j, &(item, count, _)) in agg.iter().enumerate() {
        out_items[j] = item;
        out_counts[j] = count as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    const DAY: i64 = 86_400;

    fn cfg(windows: &[&str], top_n: usize) -> SessionConfig {
        SessionConfig {
            windows: windows.iter().map(|s| s.to_string()).collect(),
            top_n,
        }
    }

    fn layer(windows: &[&str], top_n: usize) -> Sessions {
        Sessions::new(&cfg(windows, top_n)).unwrap()
    }

    /// Fills positives only; returns (items, counts) per session.
    fn pos_only(s: &Sessions, items: &[u32], ts: &[i64], t: i64) -> Vec<(Vec<u32>, Vec<f32>)> {
        let mut out = s.new_slots();
        s.fill(items, ts, &[], &[], t, &mut out);
        assert!(out.neg_items.iter().all(|&i| i == 0));
        assert!(out.neg_counts.iter().all(|&c| c == 0.0));
        split(s, &out.pos_items, &out.pos_counts)
    }

    fn split(s: &Sessions, items: &[u32], counts: &[f32]) -> Vec<(Vec<u32>, Vec<f32>)> {
        let n = s.top_n();
        (0..s.num_sessions())
            .map(|k| {
                (
                    items[k * n..(k + 1) * n].to_vec(),
                    counts[k * n..(k + 1) * n].to_vec(),
                )
            })
            .collect()
    }

    fn config_err(c: &SessionConfig) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_the_paper() {
        let c = SessionConfig::default();
        assert_eq!(c.windows, ["14d", "6m", "12m", "all"]);
        assert_eq!(c.top_n, 10);
        let s = Sessions::new(&c).unwrap();
        assert_eq!(s.num_sessions(), 4);
        assert_eq!(s.top_n(), 10);
        assert_eq!(
            s.bounds(),
            &[Some(14 * DAY), Some(180 * DAY), Some(360 * DAY), None]
        );
        assert_eq!(s.slot_len(), 40);
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let c: SessionConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, SessionConfig::default());
        let c: SessionConfig = serde_json::from_str(r#"{"top_n": 3}"#).unwrap();
        assert_eq!(c.top_n, 3);
        assert_eq!(c.windows, SessionConfig::default().windows);
        assert!(serde_json::from_str::<SessionConfig>(r#"{"topn": 3}"#).is_err());
        let json = serde_json::to_string(&cfg(&["3d", "7d"], 2)).unwrap();
        assert_eq!(
            serde_json::from_str::<SessionConfig>(&json).unwrap(),
            cfg(&["3d", "7d"], 2)
        );
    }

    #[test]
    fn parse_window_units() {
        assert_eq!(parse_window("all").unwrap(), None);
        assert_eq!(parse_window("1s").unwrap(), Some(1));
        assert_eq!(parse_window("90s").unwrap(), Some(90));
        assert_eq!(parse_window("2min").unwrap(), Some(120));
        assert_eq!(parse_window("3h").unwrap(), Some(3 * 3600));
        assert_eq!(parse_window("14d").unwrap(), Some(14 * DAY));
        assert_eq!(parse_window("2w").unwrap(), Some(14 * DAY));
        assert_eq!(parse_window("6m").unwrap(), Some(180 * DAY));
        assert_eq!(parse_window("1y").unwrap(), Some(365 * DAY));
        assert_eq!(parse_window("007d").unwrap(), Some(7 * DAY));
        for bad in [
            "", "d", "14", "14x", "14D", "1.5d", "-3d", "+3d", " 3d", "3d ", "All", "3 d",
        ] {
            let e = parse_window(bad).unwrap_err().to_string();
            assert!(e.contains("sessions.windows"), "{bad:?}: {e}");
            assert!(e.contains(&format!("'{bad}'")), "{bad:?}: {e}");
            assert!(e.contains("min, h, d, w, m"), "{bad:?}: {e}");
        }
        let e = parse_window("0d").unwrap_err().to_string();
        assert!(e.contains("zero-length") && e.contains("'0d'"), "{e}");
        // Overflow in the multiplication and in the number itself.
        let max_days = i64::MAX / DAY;
        assert_eq!(
            parse_window(&format!("{max_days}d")).unwrap(),
            Some(max_days * DAY)
        );
        let e = parse_window(&format!("{}d", max_days + 1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("overflows") && e.contains("sessions.windows"),
            "{e}"
        );
        assert_eq!(
            parse_window(&format!("{}s", i64::MAX)).unwrap(),
            Some(i64::MAX)
        );
        let e = parse_window("99999999999999999999s")
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn validation_errors() {
        assert!(SessionConfig::default().validate().is_ok());
        assert!(cfg(&["all"], 1).validate().is_ok());
        assert!(cfg(&["3d", "7d", "14d", "30d"], 5).validate().is_ok());

        let e = config_err(&cfg(&[], 10));
        assert!(e.contains("sessions.windows") && e.contains("empty"), "{e}");

        let e = config_err(&cfg(&["14d", "6q", "all"], 10));
        assert!(e.contains("sessions.windows") && e.contains("'6q'"), "{e}");
        assert!(e.contains("s, min, h, d, w, m"), "{e}");

        let e = config_err(&cfg(&["6m", "14d", "all"], 10));
        assert!(
            e.contains("sessions.windows") && e.contains("increasing"),
            "{e}"
        );
        assert!(e.contains("'14d'"), "{e}");

        let e = config_err(&cfg(&["14d", "14d"], 10));
        assert!(
            e.contains("sessions.windows") && e.contains("increasing"),
            "{e}"
        );
        // Same length spelled differently is still a duplicate.
        let e = config_err(&cfg(&["2w", "14d"], 10));
        assert!(e.contains("increasing") && e.contains("'14d'"), "{e}");

        let e = config_err(&cfg(&["14d", "all", "12m"], 10));
        assert!(
            e.contains("sessions.windows") && e.contains("'all' must be the last"),
            "{e}"
        );
        let e = config_err(&cfg(&["all", "all"], 10));
        assert!(e.contains("'all' must be the last"), "{e}");

        let e = config_err(&cfg(&["0d", "all"], 10));
        assert!(
            e.contains("sessions.windows") && e.contains("zero-length"),
            "{e}"
        );
        assert!(e.contains("'0d'"), "{e}");

        let e = config_err(&cfg(&["14d", "all"], 0));
        assert!(e.contains("sessions.top_n") && e.contains(">= 1"), "{e}");

        let e = config_err(&cfg(&["14d", "all"], usize::MAX));
        assert!(
            e.contains("sessions.top_n") && e.contains("overflows"),
            "{e}"
        );

        assert!(Sessions::new(&cfg(&[], 10)).is_err());
    }

    #[test]
    fn band_membership_at_exact_boundaries() {
        let s = layer(&["14d", "6m", "12m", "all"], 4);
        let t = 1_000 * DAY;
        // Items named by their band: 1 at t-14d (band 0), 2 at t-14d-1 (band 1), 3 at t-6m
        // (band 1), 4 at t-6m-1 (band 2), 5 at t-12m (band 2), 6 at t-12m-1 (band 3),
        // 7 at t-1 (band 0), 8 at t (excluded), 9 at t+1 (excluded), 10 at time 0 (band 3).
        let mut ev = vec![
            (1u32, t - 14 * DAY),
            (2, t - 14 * DAY - 1),
            (3, t - 180 * DAY),
            (4, t - 180 * DAY - 1),
            (5, t - 360 * DAY),
            (6, t - 360 * DAY - 1),
            (7, t - 1),
            (8, t),
            (9, t + 1),
            (10, 0),
        ];
        ev.sort_by_key(|&(_, ts)| ts);
        let items: Vec<u32> = ev.iter().map(|e| e.0).collect();
        let ts: Vec<i64> = ev.iter().map(|e| e.1).collect();
        let got = pos_only(&s, &items, &ts, t);
        // All counts 1: ties by most recent first.
        assert_eq!(got[0], (vec![7, 1, 0, 0], vec![1.0, 1.0, 0.0, 0.0]));
        assert_eq!(got[1], (vec![2, 3, 0, 0], vec![1.0, 1.0, 0.0, 0.0]));
        assert_eq!(got[2], (vec![4, 5, 0, 0], vec![1.0, 1.0, 0.0, 0.0]));
        assert_eq!(got[3], (vec![6, 10, 0, 0], vec![1.0, 1.0, 0.0, 0.0]));
    }

    #[test]
    fn events_at_or_after_t_are_never_used() {
        let s = layer(&["1d", "all"], 3);
        let t = 10 * DAY;
        let got = pos_only(&s, &[5, 6, 7], &[t, t, t + 5], t);
        assert_eq!(got[0], (vec![0, 0, 0], vec![0.0; 3]));
        assert_eq!(got[1], (vec![0, 0, 0], vec![0.0; 3]));
        // Empty history.
        let got = pos_only(&s, &[], &[], t);
        assert!(got.iter().all(|(i, c)| i == &[0, 0, 0] && c == &[0.0; 3]));
    }

    #[test]
    fn frequency_ranking_and_tie_breaks() {
        let s = layer(&["all"], 10);
        let t = 100;
        // item 3: x3; item 9: x2 (last at 50); item 4: x2 (last at 60); item 8: x1 at 70;
        // item 2: x1 at 70 (same ts as 8: smaller id first); item 1: x1 at 10.
        let ev = [
            (3u32, 5i64),
            (1, 10),
            (9, 20),
            (3, 25),
            (4, 30),
            (9, 50),
            (4, 60),
            (3, 65),
            (8, 70),
            (2, 70),
        ];
        let items: Vec<u32> = ev.iter().map(|e| e.0).collect();
        let ts: Vec<i64> = ev.iter().map(|e| e.1).collect();
        let got = pos_only(&s, &items, &ts, t);
        assert_eq!(got[0].0, vec![3, 4, 9, 2, 8, 1, 0, 0, 0, 0]);
        assert_eq!(
            got[0].1,
            vec![3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        // Order of equal-ts events in the input does not matter.
        let mut items2 = items.clone();
        items2.swap(8, 9);
        assert_eq!(pos_only(&s, &items2, &ts, t), got);
    }

    #[test]
    fn counts_are_per_session_and_recency_is_within_the_band() {
        let s = layer(&["10s", "all"], 2);
        let t = 100;
        // Band 0 = [90, 100): 5 x1 at 95, 6 x1 at 91. Band 1 = (-inf, 90): 6 x2 (20, 30),
        // 5 x1 at 85 (its later occurrence at 95 is in band 0 and must not count here).
        let got = pos_only(&s, &[6, 6, 5, 6, 5], &[20, 30, 85, 91, 95], t);
        assert_eq!(got[0], (vec![5, 6], vec![1.0, 1.0]));
        assert_eq!(got[1], (vec![6, 5], vec![2.0, 1.0]));
        // Recency within the band: 7 at 10 and 8 at 40 both x1 in band 1; 7 also at 95.
        let got = pos_only(&s, &[7, 8, 7], &[10, 40, 95], t);
        assert_eq!(got[1], (vec![8, 7], vec![1.0, 1.0]));
    }

    #[test]
    fn truncation_to_top_n_keeps_counts() {
        let s = layer(&["all"], 2);
        let items = [1u32, 2, 2, 3, 3, 3, 4, 4, 4, 4];
        let ts: Vec<i64> = (0..items.len() as i64).collect();
        let got = pos_only(&s, &items, &ts, 1_000);
        assert_eq!(got[0], (vec![4, 3], vec![4.0, 3.0]));
        // Truncation at a tie: items 5, 7, 6 x1 (times ascending, as `fill` requires), only the
        // two most recent survive, most recent first.
        let got = pos_only(&s, &[5, 7, 6], &[1, 2, 3], 1_000);
        assert_eq!(got[0], (vec![6, 7], vec![1.0, 1.0]));
    }

    #[test]
    fn negatives_are_ranked_separately() {
        let s = layer(&["1d", "all"], 3);
        let t = 10 * DAY;
        let mut out = s.new_slots();
        s.fill(
            &[1, 1, 2],
            &[t - 2 * DAY, t - 100, t - 50],
            &[2, 7, 7, 7, 8],
            &[t - 3 * DAY, t - 5, t - 4, t - 3, t],
            t,
            &mut out,
        );
        assert_eq!(out.pos_items, vec![2, 1, 0, 1, 0, 0]);
        assert_eq!(out.pos_counts, vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(out.neg_items, vec![7, 0, 0, 2, 0, 0]);
        assert_eq!(out.neg_counts, vec![3.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn without_all_older_events_are_dropped() {
        let s = layer(&["3d", "7d", "14d", "30d"], 2);
        let t = 100 * DAY;
        let got = pos_only(
            &s,
            &[1, 2, 3, 4, 5],
            &[
                t - 40 * DAY,
                t - 30 * DAY - 1,
                t - 30 * DAY,
                t - 10 * DAY,
                t - DAY,
            ],
            t,
        );
        assert_eq!(got[0], (vec![5, 0], vec![1.0, 0.0]));
        assert_eq!(got[1], (vec![0, 0], vec![0.0, 0.0]));
        assert_eq!(got[2], (vec![4, 0], vec![1.0, 0.0]));
        assert_eq!(got[3], (vec![3, 0], vec![1.0, 0.0]));
    }

    #[test]
    fn fill_overwrites_and_resizes_the_buffer() {
        let s = layer(&["1d", "all"], 2);
        let mut out = s.new_slots();
        s.fill(&[1, 2, 3], &[1, 2, 3], &[4, 5], &[1, 2], 10 * DAY, &mut out);
        assert!(out.pos_items.iter().any(|&i| i != 0));
        s.fill(&[], &[], &[], &[], 10 * DAY, &mut out);
        assert_eq!(out.pos_items, vec![0; 4]);
        assert_eq!(out.pos_counts, vec![0.0; 4]);
        assert_eq!(out.neg_items, vec![0; 4]);
        assert_eq!(out.neg_counts, vec![0.0; 4]);
        // A wrongly shaped buffer is resized.
        let mut odd = SessionSlots::new(7, 3);
        s.fill(&[9], &[5], &[], &[], 10 * DAY, &mut odd);
        assert_eq!(odd.pos_items, vec![0, 0, 9, 0]);
        assert_eq!(odd.neg_items.len(), 4);
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let s = layer(&["1y", "all"], 2);
        let got = pos_only(&s, &[1, 2], &[i64::MIN, i64::MIN + 1], i64::MIN + 5);
        assert_eq!(got[0], (vec![2, 1], vec![1.0, 1.0]));
        let s = layer(&[&format!("{}s", i64::MAX)], 2);
        let got = pos_only(&s, &[1, 2], &[i64::MIN, 0], i64::MAX);
        assert_eq!(got[0], (vec![2, 0], vec![1.0, 0.0]));
    }

    #[test]
    fn fill_batch_is_row_major() {
        let s = layer(&["1d", "all"], 2);
        let (pi, pt) = (vec![1u32, 2], vec![1i64, 2 * DAY]);
        let (ni, nt) = (vec![3u32], vec![DAY]);
        let rows: Vec<SessionRow> = vec![
            (&pi, &pt, &ni, &nt, 2 * DAY + 1),
            (&pi, &pt, &ni, &nt, 2 * DAY),
            (&[], &[], &[], &[], 0),
        ];
        let b = s.fill_batch(rows.iter().copied());
        assert_eq!((b.batch_size, b.num_sessions, b.top_n), (3, 2, 2));
        assert_eq!(b.pos_items, vec![2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(b.neg_items, vec![0, 0, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b.pos_counts.len(), 12);
        for (r, row) in rows.iter().enumerate() {
            let mut one = s.new_slots();
            s.fill(row.0, row.1, row.2, row.3, row.4, &mut one);
            assert_eq!(&b.pos_items[r * 4..(r + 1) * 4], &one.pos_items[..]);
            assert_eq!(&b.neg_counts[r * 4..(r + 1) * 4], &one.neg_counts[..]);
        }
        let empty = s.fill_batch(std::iter::empty());
        assert_eq!(empty.batch_size, 0);
        assert!(empty.pos_items.is_empty());
    }

    /// Naive O(history) reference: direct interval tests in i128, HashMap counting, full sort.
    fn naive(
        bounds: &[Option<i64>],
        n: usize,
        items: &[u32],
        ts: &[i64],
        t: i64,
    ) -> (Vec<u32>, Vec<f32>) {
        let (mut oi, mut oc) = (vec![0u32; bounds.len() * n], vec![0f32; bounds.len() * n]);
        for (s, b) in bounds.iter().enumerate() {
            let hi = t as i128
                - if s == 0 {
                    0
                } else {
                    bounds[s - 1].unwrap() as i128
                };
            let lo = b.map(|w| t as i128 - w as i128);
            let mut m: HashMap<u32, (u32, i64)> = HashMap::new();
            for (&i, &x) in items.iter().zip(ts) {
                let x128 = x as i128;
                if x128 < hi && lo.is_none_or(|lo| x128 >= lo) {
                    let e = m.entry(i).or_insert((0, i64::MIN));
                    e.0 += 1;
                    e.1 = e.1.max(x);
                }
            }
            let mut v: Vec<(u32, u32, i64)> = m.into_iter().map(|(i, (c, r))| (i, c, r)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
            for (j, &(i, c, _)) in v.iter().take(n).enumerate() {
                oi[s * n + j] = i;
                oc[s * n + j] = c as f32;
            }
        }
        (oi, oc)
    }

    fn random_history(rng: &mut ChaCha8Rng, t_max: i64) -> (Vec<u32>, Vec<i64>) {
        let len = rng.gen_range(0..60);
        let n_items = rng.gen_range(1..12u32);
        let mut ts: Vec<i64> = (0..len)
            .map(|_| {
                // Day-aligned timestamps so events hit window boundaries exactly, plus some
                // arbitrary ones.
                if rng.gen_bool(0.7) {
                    rng.gen_range(0..=t_max / DAY) * DAY
                } else {
                    rng.gen_range(0..=t_max)
                }
            })
            .collect();
        ts.sort_unstable();
        let items = (0..len).map(|_| rng.gen_range(1..=n_items)).collect();
        (items, ts)
    }

    const FUTURE: u32 = 1_000;

    /// Adds 0..5 events at or after `t` with ids >= FUTURE, keeping the history sorted.
    fn with_future(
        rng: &mut ChaCha8Rng,
        items: Vec<u32>,
        ts: Vec<i64>,
        t: i64,
    ) -> (Vec<u32>, Vec<i64>) {
        let mut ev: Vec<(u32, i64)> = items.into_iter().zip(ts).collect();
        for _ in 0..rng.gen_range(0..5) {
            let when = if rng.gen_bool(0.5) {
                t
            } else {
                t + rng.gen_range(0..3 * DAY)
            };
            ev.push((FUTURE + rng.gen_range(0..3), when));
        }
        ev.sort_by_key(|&(_, when)| when);
        ev.into_iter().unzip()
    }

    #[test]
    fn randomized_against_naive_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e55_1045);
        let configs = [
            cfg(&["14d", "6m", "12m", "all"], 3),
            cfg(&["3d", "7d", "14d", "30d"], 2),
            cfg(&["1d", "all"], 5),
            cfg(&["all"], 4),
            cfg(&["2d"], 1),
            cfg(&["12h", "1d", "2w", "1y"], 6),
        ];
        let t_max = 800 * DAY;
        let mut slots = SessionSlots::default();
        for round in 0..3_000 {
            let c = &configs[round % configs.len()];
            let s = Sessions::new(c).unwrap();
            let (pi, pt) = random_history(&mut rng, t_max);
            let (ni, nt) = random_history(&mut rng, t_max);
            // t often equal to an event's timestamp or day-aligned.
            let t = match rng.gen_range(0..3) {
                0 if !pt.is_empty() => pt[rng.gen_range(0..pt.len())],
                1 => rng.gen_range(0..=t_max / DAY) * DAY,
                _ => rng.gen_range(0..=t_max),
            };
            // Future events (at t or later) carry reserved ids >= FUTURE and must never appear.
            let (pi, pt) = with_future(&mut rng, pi, pt, t);
            let (ni, nt) = with_future(&mut rng, ni, nt, t);
            s.fill(&pi, &pt, &ni, &nt, t, &mut slots);
            assert!(slots.pos_items.iter().all(|&i| i < FUTURE), "round {round}");
            assert!(slots.neg_items.iter().all(|&i| i < FUTURE), "round {round}");
            let (ei, ec) = naive(s.bounds(), s.top_n(), &pi, &pt, t);
            assert_eq!(slots.pos_items, ei, "round {round} pos items");
            assert_eq!(slots.pos_counts, ec, "round {round} pos counts");
            let (ei, ec) = naive(s.bounds(), s.top_n(), &ni, &nt, t);
            assert_eq!(slots.neg_items, ei, "round {round} neg items");
            assert_eq!(slots.neg_counts, ec, "round {round} neg counts");
            // No item whose every occurrence is at or after t may appear.
            for (items, ts, out) in [(&pi, &pt, &slots.pos_items), (&ni, &nt, &slots.neg_items)] {
                for &i in out.iter().filter(|&&i| i != 0) {
                    assert!(
                        items.iter().zip(ts.iter()).any(|(&j, &x)| j == i && x < t),
                        "round {round}: item {i} has no occurrence before t"
                    );
                }
            }
            // Counts: total over sessions never exceeds the events before t.
            let before = pt.iter().filter(|&&x| x < t).count() as f32;
            assert!(slots.pos_counts.iter().sum::<f32>() <= before);
        }
    }
}
