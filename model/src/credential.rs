//! Per-host credentials (`/api/v1/credentials/hosts/`): the answer that carries a new
//! host token, the only answer that ever does.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Secret;

/// The answer of `POST /api/v1/credentials/hosts/<host>/`: the host's new token, shown
/// this once (netmaster keeps only its SHA-256). `Debug` hides the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostCredential {
    pub host: String,
    /// `<host>.<secret>`: what netplugin's `--token-file` holds.
    #[serde(serialize_with = "expose", deserialize_with = "secret")]
    #[schemars(with = "String")]
    pub token: Secret,
}

fn expose<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

fn secret<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
    String::deserialize(de).map(Secret::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_as_a_string_and_never_prints() {
        let c: HostCredential =
            serde_json::from_str(r#"{"host":"h1","token":"h1.s3cret"}"#).unwrap();
        assert_eq!(c.token.expose(), "h1.s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"host":"h1","token":"h1.s3cret"})
        );
    }
}
