//! Typed model configs from TOML tables: unknown keys are errors that name the key, and every
//! value is range-checked ([`ModelParams::validate`]) before anything is allocated, so a bad
//! number from a config is a one-line error naming its key rather than a libtorch abort.

use crate::error::{CoreError, Result};
use serde::de::DeserializeOwned;

/// The largest layer or embedding width accepted (a wider one is a typo, and its tables would
/// not fit in memory next to any real vocabulary).
pub const MAX_DIM: i64 = 1 << 16;

/// A model's typed `[model.params]` (the struct should carry
/// `#[serde(deny_unknown_fields, default)]`). The registry uses it to check a config before any
/// data is read ([`crate::Registry::add`]).
pub trait ModelParams: DeserializeOwned + serde::Serialize {
    /// Range checks of every value; an error names its key (see [`Check`]).
    fn validate(&self, check: &Check) -> Result<()>;
    /// The loss terms a model with these params returns: the names `[train] loss_weights` may use.
    fn loss_terms(&self) -> Vec<String>;
}

/// Parses a model's `[model.params]` table into its typed config and validates it.
pub fn parse<T: ModelParams>(model: &str, table: &toml::Table) -> Result<T> {
    let p: T = parse_table(model, table)?;
    p.validate(&Check { model })?;
    Ok(p)
}

/// Parses a table into any serde type; errors name the offending key (no range checks).
pub fn parse_table<T: DeserializeOwned>(model: &str, table: &toml::Table) -> Result<T> {
    toml::Value::Table(table.clone())
        .try_into::<T>()
        .map_err(|e| {
            let message = e.to_string().trim().to_string();
            // toml names the offending key between backticks, after " in " when the value is
            // wrong (the value itself may be in backticks too: "integer `3`, ...\nin `loss`").
            let key = message
                .rsplit_once("in `")
                .and_then(|(_, rest)| rest.split('`').next())
                .or_else(|| message.split('`').nth(1))
                .unwrap_or("<params>")
                .to_string();
            // The error names the key itself, so toml's last line ("in `key`") is dropped and
            // the rest joined into one line (a word that is not one of a choice's variants:
            // "unknown variant `x`, expected one of `a`, `b`, `c`").
            let message = match message.rsplit_once('\n') {
                Some((head, last)) if last.trim() == format!("in `{key}`") => head,
                _ => message.as_str(),
            };
            let message = message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            CoreError::Params {
                model: model.to_string(),
                key,
                message,
            }
        })
}

/// The config spelling of a choice-valued param (a unit enum variant with
/// `#[serde(rename_all = ...)]`), as its `Serialize` writes it: `word(&Backbone::Gru4Rec)` is
/// `"gru4rec"`. Anything that is not a word comes back as its TOML text.
pub fn word<T: serde::Serialize>(v: &T) -> String {
    match toml::Value::try_from(v) {
        Ok(toml::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// Range checks that name the model and key: `check.dim("embedding_dim", p.embedding_dim)?`.
pub struct Check<'a> {
    pub model: &'a str,
}

impl Check<'_> {
    /// The error for `key`.
    pub fn bad(&self, key: &str, message: impl Into<String>) -> CoreError {
        CoreError::Params {
            model: self.model.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An integer in `[min, max]`.
    pub fn int(&self, key: &str, v: i64, min: i64, max: i64) -> Result<()> {
        if (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, format!("must be in [{min}, {max}], got {v}")))
        }
    }

    /// A layer or embedding width: `[1, MAX_DIM]`.
    pub fn dim(&self, key: &str, v: i64) -> Result<()> {
        self.int(key, v, 1, MAX_DIM)
    }

    /// An optional width (absent = derived from another one).
    pub fn opt_dim(&self, key: &str, v: Option<i64>) -> Result<()> {
        v.map_or(Ok(()), |v| self.dim(key, v))
    }

    /// Every width of a layer list (an empty list is allowed: no hidden layer).
    pub fn dims(&self, key: &str, v: &[i64]) -> Result<()> {
        for (i, &d) in v.iter().enumerate() {
            if !(1..=MAX_DIM).contains(&d) {
                return Err(self.bad(key, format!("entry {i} must be in [1, {MAX_DIM}], got {d}")));
            }
        }
        Ok(())
    }

    /// A dropout probability: `[0, 1)`.
    pub fn prob(&self, key: &str, v: f64) -> Result<()> {
        if (0.0..1.0).contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, format!("must be in [0, 1), got {v}")))
        }
    }

    /// A finite number in `(0, max]` (a scale, a standard deviation, a temperature).
    pub fn positive(&self, key: &str, v: f64, max: f64) -> Result<()> {
        if v > 0.0 && v <= max {
            Ok(())
        } else {
            Err(self.bad(key, format!("must be in (0, {max}], got {v}")))
        }
    }

    /// A finite number in `[0, max]`.
    pub fn non_negative(&self, key: &str, v: f64, max: f64) -> Result<()> {
        if (0.0..=max).contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, format!("must be in [0, {max}], got {v}")))
        }
    }

    /// One of a fixed set of words. (A params field with a fixed set of words is better a
    /// serde enum: parsing then rejects any other word, naming the key and the variants.)
    pub fn one_of(&self, key: &str, v: &str, allowed: &[&str]) -> Result<()> {
        if allowed.contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, format!("'{v}' is not one of: {}", allowed.join(", "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, serde::Serialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct P {
        dim: i64,
    }

    impl ModelParams for P {
        fn validate(&self, c: &Check) -> Result<()> {
            c.dim("dim", self.dim)
        }
        fn loss_terms(&self) -> Vec<String> {
            vec!["ctr".into()]
        }
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        for (text, want) in [
            ("dim = 0", "[1, 65536]"),
            ("dim = -3", "got -3"),
            ("dim = 100000000", "got 100000000"),
        ] {
            let t: toml::Table = toml::from_str(text).unwrap();
            match parse::<P>("m", &t).unwrap_err() {
                CoreError::Params { key, message, .. } => {
                    assert_eq!(key, "dim");
                    assert!(message.contains(want), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let c = Check { model: "m" };
        assert!(c
            .dims("hidden", &[8, 0])
            .unwrap_err()
            .to_string()
            .contains("entry 1"));
        assert!(c.prob("dropout", 1.0).is_err() && c.prob("dropout", f64::NAN).is_err());
        assert!(
            c.positive("s", f64::INFINITY, 10.0).is_err() && c.positive("s", 0.0, 1.0).is_err()
        );
        assert!(c
            .one_of("k", "x", &["a", "b"])
            .unwrap_err()
            .to_string()
            .contains("a, b"));
    }

    #[test]
    fn unknown_key_is_named() {
        let t: toml::Table = toml::from_str("dimm = 3").unwrap();
        let err = parse::<P>("m", &t).unwrap_err().to_string();
        assert!(err.contains("'dimm'"), "{err}");
        let t: toml::Table = toml::from_str("dim = 3").unwrap();
        assert_eq!(parse::<P>("m", &t).unwrap(), P { dim: 3 });
        // A value of the wrong type names the key, not the value.
        #[derive(Debug, Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        struct Q {
            #[allow(dead_code)]
            loss: String,
        }
        let t: toml::Table = toml::from_str("loss = 3").unwrap();
        match parse_table::<Q>("m", &t).unwrap_err() {
            CoreError::Params { key, message, .. } => {
                assert_eq!(key, "loss", "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Pooling {
        Sum,
        MeanOfAll,
        #[serde(rename = "qmargin")]
        QMargin,
    }

    #[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct C {
        pooling: Pooling,
    }

    impl Default for C {
        fn default() -> Self {
            Self {
                pooling: Pooling::Sum,
            }
        }
    }

    /// A choice-valued field is a serde enum: a word outside it is one line naming the key and
    /// every variant; the words parse and serialize as written.
    #[test]
    fn choices_name_the_key_and_the_variants() {
        for bad in ["pooling = \"avg\"", "pooling = \"\"", "pooling = \"Sum\""] {
            let t: toml::Table = toml::from_str(bad).unwrap();
            let err = parse_table::<C>("m", &t).unwrap_err();
            let shown = err.to_string();
            match err {
                CoreError::Params { key, message, .. } => {
                    assert_eq!(key, "pooling", "{bad}: {message}");
                    assert!(
                        message.contains("expected one of `sum`, `mean_of_all`, `qmargin`"),
                        "{bad}: {message}"
                    );
                }
                other => panic!("{other:?}"),
            }
            assert!(!shown.contains('\n'), "{shown}");
            assert!(
                shown.starts_with("model 'm': config key 'pooling': "),
                "{shown}"
            );
        }
        for (text, want) in [
            ("sum", Pooling::Sum),
            ("mean_of_all", Pooling::MeanOfAll),
            ("qmargin", Pooling::QMargin),
        ] {
            let t: toml::Table = toml::from_str(&format!("pooling = \"{text}\"")).unwrap();
            let c: C = parse_table("m", &t).unwrap();
            assert_eq!(c.pooling, want);
            assert_eq!(word(&want), text);
            assert_eq!(toml::Table::try_from(&c).unwrap(), t);
        }
        assert_eq!(word(&3), "3");
    }
}
