//! `longtail prepare`'s guards, end to end: a `[sessions] top_n` or `[sequences] max_len` too
//! large for memory is refused quickly with an error naming the key (it was OOM-killed), and a
//! folder that only holds a file named `prepare.json` is never replaced (it was deleted).

use super::{longtail, stderr};

const CFG: &str = "dataset = \"s\"\n[data]\nkind = \"synth\"\n[data.synth]\nusers = 100\n\
                   items = 20\nclusters = 2\n";

/// Exit 1, the error as the last line of stderr (after prepare's stage lines), with every needle.
fn fails_with(o: &std::process::Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    let last = err.trim_end().lines().last().unwrap_or_default();
    for n in needles {
        assert!(last.contains(n), "missing '{n}' in: {err}");
    }
}

#[test]
fn prepare_refuses_sizes_that_do_not_fit_in_memory() {
    let d = tempfile::tempdir().unwrap();
    for (section, key) in [
        ("[sessions]\ntop_n = 1000000\n", "sessions.top_n"),
        (
            "[sequences]\nmax_len = 100000000000\neval_negatives = 5\n",
            "sequences.max_len",
        ),
    ] {
        std::fs::write(d.path().join("p.toml"), format!("{CFG}{section}")).unwrap();
        let started = std::time::Instant::now();
        let o = longtail(
            &["prepare", "--config", "p.toml", "--out", "prep"],
            d.path(),
        );
        fails_with(&o, &[key, "available"]);
        assert!(started.elapsed().as_secs() < 30, "{key}: slow refusal");
        assert!(!d.path().join("prep").exists(), "{key}");
    }
}

#[test]
fn prepare_never_replaces_a_folder_with_a_fake_manifest() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("p.toml"), CFG).unwrap();
    for fake in ["not json", "{}"] {
        let mine = d.path().join("mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("prepare.json"), fake).unwrap();
        std::fs::write(mine.join("thesis.tex"), "my thesis").unwrap();
        let o = longtail(
            &["prepare", "--config", "p.toml", "--out", "mine"],
            d.path(),
        );
        fails_with(&o, &["mine", "not a prepared folder"]);
        assert_eq!(
            std::fs::read_to_string(mine.join("thesis.tex")).unwrap(),
            "my thesis"
        );
        assert_eq!(
            std::fs::read_to_string(mine.join("prepare.json")).unwrap(),
            fake
        );
    }
    // A folder prepare wrote is replaced.
    for _ in 0..2 {
        let o = longtail(
            &["prepare", "--config", "p.toml", "--out", "prep"],
            d.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
