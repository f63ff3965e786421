//! Reading Xtream Codes JSON as panels really send it: any field may be a string, a number, a
//! boolean or null (`"stream_id": "42"` and `"stream_id": 42` both occur, sometimes in one
//! reply), and `get_live_streams` may be an array, an object keyed by index, or null. The stream
//! list is read one element at a time through a serde visitor, so a reply of 100k streams is
//! never held as one big value.

use std::fmt;
use std::ops::ControlFlow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A scalar of any JSON type, as text; null, arrays and objects read as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flex(pub Option<String>);

impl Flex {
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("").trim()
    }

    /// True for `1`, `"1"`, `true`, `"true"`.
    pub fn is_true(&self) -> bool {
        matches!(self.as_str(), "1" | "true" | "True" | "TRUE")
    }

    pub fn as_i64(&self) -> Option<i64> {
        let s = self.as_str();
        s.parse::<i64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
    }
}

impl<'de> Deserialize<'de> for Flex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
}

struct FlexVisitor;

impl<'de> Visitor<'de> for FlexVisitor {
    type Value = Flex;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_str<E>(self, v: &str) -> Result<Flex, E> {
        Ok(Flex(Some(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Flex, E> {
        Ok(Flex(Some(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Flex, E> {
        Ok(Flex(Some(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Flex, E> {
        Ok(Flex(Some(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Flex, E> {
        // `7.0` means 7: print whole numbers without a fraction.
        let text = if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            v.to_string()
        };
        Ok(Flex(Some(text)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Flex, E> {
        Ok(Flex(Some(if v { "1" } else { "0" }.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Flex, E> {
        Ok(Flex(None))
    }
    fn visit_none<E>(self) -> Result<Flex, E> {
        Ok(Flex(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flex, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flex, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Flex(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flex, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Flex(None))
    }
}

/// A list of scalars (`category_ids`); anything else reads as empty.
#[derive(Debug, Clone, Default)]
pub struct FlexList(pub Vec<Flex>);

impl<'de> Deserialize<'de> for FlexList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlexList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlexList, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Flex>()? {
                    out.push(v);
                }
                Ok(FlexList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlexList, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FlexList::default())
            }
            fn visit_unit<E>(self) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_none<E>(self) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<FlexList, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_str<E>(self, _: &str) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<FlexList, E> {
                Ok(FlexList::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of `get_live_streams`, with the fields lineup uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawStream {
    pub num: Flex,
    pub name: Flex,
    pub stream_id: Flex,
    pub stream_icon: Flex,
    pub epg_channel_id: Flex,
    pub category_id: Flex,
    pub category_ids: FlexList,
    pub tv_archive: Flex,
    pub tv_archive_duration: Flex,
}

/// One element of `get_live_categories`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawCategory {
    pub category_id: Flex,
    pub category_name: Flex,
}

/// Call `f` for every object in a top-level array (or index-keyed object) of `T`; elements
/// that are not objects are skipped and counted. Returns (delivered, skipped). Stops reading
/// when `f` breaks.
pub fn for_each<'de, D, T, F>(d: D, f: F) -> Result<(u64, u64), D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    F: FnMut(T) -> ControlFlow<()>,
{
    let mut each = Each {
        f,
        delivered: 0,
        skipped: 0,
        stopped: false,
        _t: std::marker::PhantomData,
    };
    match d.deserialize_any(&mut each) {
        Ok(()) => Ok((each.delivered, each.skipped)),
        // The unwinding error of a stop is not a parse error.
        Err(_) if each.stopped => Ok((each.delivered, each.skipped)),
        Err(e) => Err(e),
    }
}

struct Each<T, F> {
    f: F,
    delivered: u64,
    skipped: u64,
    stopped: bool,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> ControlFlow<()>> Each<T, F> {
    fn take<E: de::Error>(&mut self, item: Option<T>) -> Result<(), E> {
        match item {
            None => self.skipped += 1,
            Some(item) => {
                self.delivered += 1;
                if (self.f)(item).is_break() {
                    // Unwind out of serde_json without reading the rest of the reply.
                    self.stopped = true;
                    return Err(E::custom("stopped by the consumer"));
                }
            }
        }
        Ok(())
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> ControlFlow<()>> Visitor<'de> for &mut Each<T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element_seed(Element::<T>(Default::default()))? {
            self.take(item)?;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            let item = map.next_value_seed(Element::<T>(Default::default()))?;
            self.take(item)?;
        }
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Deserializes an object as `T`, anything else as `None`.
struct Element<T>(std::marker::PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Element<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Element<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(json: &str) -> (Vec<RawStream>, u64) {
        let mut out = Vec::new();
        let mut de = serde_json::Deserializer::from_str(json);
        let (_, skipped) = for_each(&mut de, |s: RawStream| {
            out.push(s);
            ControlFlow::Continue(())
        })
        .unwrap();
        de.end().unwrap();
        (out, skipped)
    }

    #[test]
    fn fields_of_any_type() {
        let (streams, skipped) = collect(
            r#"[{"num":1,"name":"A","stream_id":"7","tv_archive":true,"tv_archive_duration":3.0,
                 "epg_channel_id":null,"category_ids":[5,"6"]},
                {"name":2,"stream_id":8,"category_id":{"odd":1}},
                "junk", 42]"#,
        );
        assert_eq!(skipped, 2);
        assert_eq!(streams[0].num.as_str(), "1");
        assert_eq!(streams[0].stream_id.as_str(), "7");
        assert!(streams[0].tv_archive.is_true());
        assert_eq!(streams[0].tv_archive_duration.as_i64(), Some(3));
        assert_eq!(streams[0].epg_channel_id, Flex(None));
        assert_eq!(streams[0].category_ids.0[1].as_str(), "6");
        assert_eq!(streams[1].name.as_str(), "2");
        assert_eq!(streams[1].category_id, Flex(None));
    }

    #[test]
    fn object_keyed_by_index_and_null() {
        let (streams, _) = collect(r#"{"0":{"stream_id":1},"1":{"stream_id":2}}"#);
        assert_eq!(streams.len(), 2);
        assert!(collect("null").0.is_empty());
        assert!(collect("[]").0.is_empty());
    }

    #[test]
    fn stop_early() {
        let mut seen = 0;
        let mut de = serde_json::Deserializer::from_str(r#"[{"stream_id":1},{"stream_id":2}]"#);
        let counts = for_each(&mut de, |_: RawStream| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!((seen, counts), (1, (1, 0)));
    }
}
