//! Nested request objects are JSON objects, nothing else.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array, field by position
//! (`"gauges": [1, 2]` would read as `{users: 1, storage_gb: 2}`). The contract says these fields
//! are objects (and schemathesis checks that a server refuses anything else), so the fields
//! holding a nested struct read a JSON object first and the struct from it.

use serde::de::{DeserializeOwned, Deserializer, Error};

/// `deserialize_with` for an `Option<T>` field whose value must be a JSON object or `null`.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let Some(map) =
        <Option<serde_json::Map<String, serde_json::Value>> as serde::Deserialize>::deserialize(
            deserializer,
        )?
    else {
        return Ok(None);
    };
    T::deserialize(serde_json::Value::Object(map))
        .map(Some)
        .map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: Option<u64>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(default, deserialize_with = "super::optional")]
        inner: Option<Inner>,
    }

    #[test]
    fn an_object_null_or_absence_is_read_and_an_array_is_refused() {
        let read = |json: &str| serde_json::from_str::<Outer>(json);
        assert_eq!(
            read(r#"{"inner": {"a": 1}}"#).ok(),
            Some(Outer {
                inner: Some(Inner { a: Some(1) })
            })
        );
        assert_eq!(read(r#"{"inner": null}"#).ok(), Some(Outer { inner: None }));
        assert_eq!(read("{}").ok(), Some(Outer { inner: None }));
        let refused = read(r#"{"inner": [1]}"#).expect_err("an array is not an object");
        assert!(refused.to_string().contains("expected a map"), "{refused}");
    }
}
