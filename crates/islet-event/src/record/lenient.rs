//! Lenient field decoding: a member whose JSON type is not the one expected reads as absent
//! instead of failing the whole record. A record from another sensor version or another tool
//! (Suricata's EVE through `serve --ingest`) may spell one member differently; the console must
//! still keep the record (nothing accepted is lost), and the typed view simply lacks that member.
//! Skipped values are walked with `IgnoredAny`, never buffered.

use serde::de::value::{
    BoolDeserializer, BorrowedStrDeserializer, F64Deserializer, I64Deserializer,
    MapAccessDeserializer, StrDeserializer, U64Deserializer,
};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// `Some(T)` when the member decodes as `T`, `None` for any other JSON value.
pub(crate) struct Lenient<T>(pub Option<T>);

struct V<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(BoolDeserializer::<E>::new(v)).ok()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(U64Deserializer::<E>::new(v)).ok()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(I64Deserializer::<E>::new(v)).ok()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(F64Deserializer::<E>::new(v)).ok()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(StrDeserializer::<E>::new(v)).ok()))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(BorrowedStrDeserializer::<E>::new(v)).ok(),
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Lists are read by `list` and `strings`; where one member is expected, an array is
        // the wrong type (a struct would otherwise take it positionally).
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut map = DrainMap(map, false);
        match T::deserialize(MapAccessDeserializer::new(&mut map)) {
            Ok(t) => Ok(Lenient(Some(t))),
            Err(_) if !map.1 => {
                while map.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            Err(e) => Err(e),
        }
    }
}

/// A map that remembers whether it was read from (then a failure cannot be recovered: the
/// position inside it is lost, and the record is refused as malformed).
struct DrainMap<A>(A, bool);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for &mut DrainMap<A> {
    type Error = A::Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.1 = true;
        self.0.next_key_seed(seed)
    }
    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(seed)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(V(PhantomData))
    }
}

/// For `#[serde(default, deserialize_with = "opt")]` on an `Option<T>` member.
pub(crate) fn opt<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Lenient::<T>::deserialize(d)?.0)
}

/// For `#[serde(default, deserialize_with = "or_default")]` on a member with a default.
pub(crate) fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Lenient::<T>::deserialize(d)?.0.unwrap_or_default())
}

/// A list of strings: an array's string items (others skipped), or one string as a list of one
/// (alert metadata values are arrays in Suricata's EVE; some tools write a bare string).
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(L::<String>(PhantomData, true))
}

/// A list: an array's items that decode as `T` (others skipped); anything else is empty.
pub(crate) fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(L::<T>(PhantomData, false))
}

/// The visitor of both: `.1` says whether a bare string is a list of one.
struct L<T>(PhantomData<T>, bool);

impl<'de, T: Deserialize<'de>> Visitor<'de> for L<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Lenient(x)) = seq.next_element::<Lenient<T>>()? {
            out.extend(x);
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if !self.1 {
            return Ok(Vec::new());
        }
        Ok(T::deserialize(StrDeserializer::<E>::new(v))
            .ok()
            .into_iter()
            .collect())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}
