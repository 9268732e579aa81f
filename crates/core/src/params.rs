//! Typed model configs from TOML tables: unknown keys are errors that name the key, and every
//! value is range-checked ([`ModelParams::validate`]) before anything is allocated, so a bad
//! number from a config is a one-line error naming its key rather than a libtorch abort.

use crate::error::{CoreError, Result};
use serde::de::DeserializeOwned;

/// The largest layer or embedding width accepted (a wider one is a typo, and its tables would
/// not fit in memory next to any real vocabulary).
pub const MAX_DIM: i64 = 1 << 16;

/// A model's typed `[model.params]` (the struct should carry
/// `#[serde(deny_unknown_fields, default)]` and `#[derive(ParamDocs)]`). The registry uses it to
/// check a config before any data is read ([`crate::Registry::add`]) and to describe the model
/// ([`crate::Registry::describe`]).
pub trait ModelParams: DeserializeOwned + serde::Serialize + ParamDocs {
    /// Range checks of every value; an error names its key (see [`Check`]).
    fn validate(&self, check: &Check) -> Result<()>;
    /// The loss terms a model with these params returns: the names `[train] loss_weights` may use.
    fn loss_terms(&self) -> Vec<String>;
}

/// One param of a params struct, as `#[derive(ParamDocs)]` reads it from the source: the config
/// key, the Rust type, the field's doc comment and, for a choice enum, its words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamDoc {
    pub name: &'static str,
    pub ty: &'static str,
    pub doc: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<ParamChoice>,
}

/// One word of a choice-valued param (a unit variant) and its doc comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamChoice {
    pub word: &'static str,
    pub doc: &'static str,
}

/// What a params type says about itself: a params struct lists its fields, a choice enum its
/// words; other value types say nothing. Derive it (`#[derive(longtail_core::ParamDocs)]`) so
/// the doc comments are the only description; a field without one does not compile.
pub trait ParamDocs {
    /// The params of a struct, in declaration order (empty for a value type).
    fn fields() -> Vec<ParamDoc> {
        Vec::new()
    }
    /// The config words of a choice enum (empty for any other type).
    fn choices() -> Vec<ParamChoice> {
        Vec::new()
    }
}

/// Plain value types carry no docs of their own.
macro_rules! value_param_docs {
    ($($t:ty),*) => { $(impl ParamDocs for $t {})* };
}
value_param_docs!(
    bool,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    usize,
    f32,
    f64,
    String,
    std::path::PathBuf
);

/// An optional or repeated param shows the choices of its element.
impl<T: ParamDocs> ParamDocs for Option<T> {
    fn choices() -> Vec<ParamChoice> {
        T::choices()
    }
}

impl<T: ParamDocs> ParamDocs for Vec<T> {
    fn choices() -> Vec<ParamChoice> {
        T::choices()
    }
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

    #[derive(Debug, Deserialize, serde::Serialize, Default, PartialEq, crate::ParamDocs)]
    #[serde(deny_unknown_fields, default)]
    struct P {
        /// The width.
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

    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, crate::ParamDocs,
    )]
    #[serde(rename_all = "snake_case")]
    enum Pooling {
        /// Adds them.
        Sum,
        /// Averages
        /// them all.
        MeanOfAll,
        #[serde(rename = "qmargin")]
        QMargin,
    }

    /// Serde spells variants as written without `rename_all`.
    #[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, crate::ParamDocs)]
    enum Plain {
        Din,
        Gru4Rec,
    }

    #[derive(Debug, Deserialize, serde::Serialize, PartialEq, crate::ParamDocs)]
    #[serde(deny_unknown_fields, default)]
    struct C {
        /// How to pool.
        pooling: Pooling,
        /// Widths, one per layer.
        #[serde(rename = "layer-widths", skip_serializing_if = "Vec::is_empty")]
        widths: Vec<i64>,
        /// Maybe a pooling.
        ///
        /// Second paragraph.
        second: Option<Pooling>,
    }

    impl Default for C {
        fn default() -> Self {
            Self {
                pooling: Pooling::Sum,
                widths: Vec::new(),
                second: None,
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

    /// The derive reads keys, types, docs and words as serde spells them: checked against serde
    /// itself, so a rename rule the derive got wrong fails here.
    #[test]
    fn derived_docs_match_serde() {
        let fields = C::fields();
        let names: Vec<_> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["pooling", "layer-widths", "second"]);
        assert_eq!(fields[0].doc, "How to pool.");
        assert_eq!(fields[1].ty, "Vec<i64>");
        assert_eq!(fields[2].ty, "Option<Pooling>");
        assert_eq!(fields[2].doc, "Maybe a pooling.\nSecond paragraph.");
        let t: toml::Table = toml::from_str("layer-widths = [2]\nsecond = \"sum\"").unwrap();
        let c: C = parse_table("m", &t).unwrap();
        assert_eq!(c.widths, [2]);
        for f in [&fields[0], &fields[2]] {
            let words: Vec<_> = f.choices.iter().map(|c| c.word).collect();
            assert_eq!(words, ["sum", "mean_of_all", "qmargin"]);
        }
        assert_eq!(fields[0].choices[1].doc, "Averages them all.");
        assert!(fields[1].choices.is_empty() && P::choices().is_empty());
        for (choice, v) in
            Pooling::choices()
                .iter()
                .zip([Pooling::Sum, Pooling::MeanOfAll, Pooling::QMargin])
        {
            assert_eq!(choice.word, word(&v));
        }
        for (choice, v) in Plain::choices().iter().zip([Plain::Din, Plain::Gru4Rec]) {
            assert_eq!(choice.word, word(&v));
        }
    }
}
