//! A list of JSON objects in a body. serde reads a struct from an array as
//! well, field by field in order: `"dates": [["2027-01-01T19:00:00Z", 3,
//! 100]]` scheduled a date, and one element more was called malformed JSON
//! (`400`). The contract's elements are objects; anything else is `422`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// `#[serde(deserialize_with = "objects_only")]` on a `Vec` of structs.
pub fn objects_only<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let objects: Vec<Object<T>> = Vec::deserialize(deserializer)?;
    Ok(objects.into_iter().map(|object| object.0).collect())
}

/// A `T` read from a JSON object only.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Date {
        seats: u32,
        price: i64,
    }

    #[derive(Debug, Deserialize)]
    struct Concert {
        #[serde(deserialize_with = "objects_only")]
        dates: Vec<Date>,
    }

    fn read(body: &str) -> Result<Vec<Date>, String> {
        serde_json::from_str::<Concert>(body)
            .map(|concert| concert.dates)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn objects_are_read_and_arrays_are_refused() {
        assert_eq!(
            read(r#"{"dates": [{"seats": 3, "price": 100}]}"#),
            Ok(vec![Date {
                seats: 3,
                price: 100
            }])
        );
        for body in [
            r#"{"dates": [[3, 100]]}"#,
            r#"{"dates": [{"seats": 3, "price": 100}, [3, 100, null]]}"#,
            r#"{"dates": ["3"]}"#,
        ] {
            let refusal = read(body).unwrap_err();
            assert!(
                refusal.contains("expected a JSON object"),
                "{body}: {refusal}"
            );
        }
    }

    #[test]
    fn an_object_s_own_errors_are_kept() {
        let refusal = read(r#"{"dates": [{"seats": -1, "price": 100}]}"#).unwrap_err();
        assert!(refusal.contains("invalid value: integer `-1`"), "{refusal}");
        let refusal = read(r#"{"dates": [{"seats": 3}]}"#).unwrap_err();
        assert!(refusal.contains("missing field `price`"), "{refusal}");
    }
}
