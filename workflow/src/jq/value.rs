//! Conversion between JSON ([`serde_json::Value`]) and jaq values, in both directions, with
//! the nesting limit that keeps the recursive conversion of a result bounded.

use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};

/// Nesting depth beyond which a jq result is refused rather than converted (conversion recurses).
const MAX_DEPTH: usize = 128;

/// Converts JSON into a jaq value.
pub(super) fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Val::Num(Num::from_integral(i))
            } else if let Some(u) = n.as_u64() {
                Val::Num(Num::from_integral(u))
            } else {
                Val::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(o) => Val::obj(
            o.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

/// Converts a jaq value into JSON: non-finite numbers become `null` (as jq prints them),
/// byte strings and non-string keys become strings.
pub(super) fn from_val(v: &Val, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the result is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => num_to_json(n),
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(a) => Value::Array(
            a.iter()
                .map(|x| from_val(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Val::Obj(o) => {
            let mut map = Map::new();
            for (k, x) in o.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => other.to_string(),
                };
                map.insert(key, from_val(x, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

fn num_to_json(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::Number(Number::from(*i as i64)),
        Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => {
            let text = other.to_string();
            serde_json::from_str::<Number>(&text)
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
                .map_or(Value::Null, Value::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_between_json_and_jaq() {
        let v = json!({"i": -3, "big": 18_446_744_073_709_551_615u64, "f": 1.5, "s": "é", "a": [null, true], "o": {}});
        assert_eq!(from_val(&to_val(&v), 0).expect("converts"), v);
    }
}
