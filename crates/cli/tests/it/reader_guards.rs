//! Guards on what the readers and generators accept (adversarial pass, 2026-12-02): each case was
//! accepted silently (or aborted) before and is a one-line error naming the flag, key or file now.
//! The reader's own rules (ids bounded by the table, finite ratings, times >= 0) are tested in
//! longtail-data's table.rs; these check that the commands report them.

use super::{fails_with, longtail, stderr};

#[test]
fn stats_head_item_share_import_columns_and_synth_start_ts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    longtail_data::Interactions {
        user: vec![1, 2, 2, 3],
        item: vec![1, 1, 2, 3],
        ts: vec![10, 20, 30, 40],
        rating: None,
        label: None,
    }
    .write_parquet(&d.join("t.parquet"))
    .unwrap();

    // --head-item-share takes the range of [samples] head_item_share.
    for v in ["1.5", "NaN", "inf", "-0.1"] {
        let flag = format!("--head-item-share={v}");
        let o = longtail(&["data", "stats", "t.parquet", &flag], d);
        fails_with(&o, &["--head-item-share", "[0, 1]"]);
    }
    let o = longtail(&["data", "stats", "t.parquet", "--head-item-share=1"], d);
    assert!(o.status.success(), "{}", stderr(&o));

    // A key given twice in --columns (the last one won).
    std::fs::write(d.join("x.csv"), "u,i,t\na,b,1\nc,d,2\n").unwrap();
    let o = longtail(
        &[
            "import",
            "--format",
            "csv",
            "--input",
            "x.csv",
            "--output",
            "o.parquet",
            "--columns",
            "user=u,user=i,item=i,ts=t",
        ],
        d,
    );
    fails_with(&o, &["'columns'", "duplicate key 'user'"]);
    assert!(!d.join("o.parquet").exists());

    // synth start_ts outside what import accepts (it wrapped to negative times).
    for start in ["9223372036854775000", "-1", "4102444800"] {
        std::fs::write(
            d.join("s.toml"),
            format!("users = 50\nitems = 20\nclusters = 4\nstart_ts = {start}\n"),
        )
        .unwrap();
        let o = longtail(&["synth", "--out", "s.parquet", "--config", "s.toml"], d);
        fails_with(&o, &["start_ts"]);
        assert!(!d.join("s.parquet").exists());
    }
}
