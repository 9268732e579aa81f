//! Typed model configs from TOML tables: unknown keys are errors that name the key.

use crate::error::{CoreError, Result};
use serde::de::DeserializeOwned;

/// Parses a model's `[model.params]` table into its typed config (which should carry
/// `#[serde(deny_unknown_fields, default)]`).
pub fn parse<T: DeserializeOwned>(model: &str, table: &toml::Table) -> Result<T> {
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
            CoreError::Params {
                model: model.to_string(),
                key,
                message,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct P {
        dim: i64,
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
        match parse::<Q>("m", &t).unwrap_err() {
            CoreError::Params { key, message, .. } => assert_eq!(key, "loss", "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
