//! Leaf deserializers shared by the model.
//!
//! serde_yaml stamps an error with the location of the YAML node being read only while that
//! node's `deserialize_*` call is on the stack; an error raised after it returned gets the
//! location of an enclosing mapping instead. So every check here runs *inside* a visitor:
//! scalars are read as the text written in the file and parsed there, ordered maps check
//! their keys while reading them, and [`CheckedMap`]/[`CheckedSeq`] validate a whole
//! mapping or sequence before its own call returns.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Reads a scalar as the text written in the file (`0.10` stays `0.10`, `yes` stays `yes`)
/// and hands it to `parse`; an `Err` from `parse` carries the scalar's location.
pub(super) fn scalar<'de, D, T, F>(d: D, expecting: &'static str, parse: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    d.deserialize_str(ScalarVisitor { expecting, parse })
}

struct ScalarVisitor<F> {
    expecting: &'static str,
    parse: F,
}

impl<'de, T, F> Visitor<'de> for ScalarVisitor<F>
where
    F: FnOnce(&str) -> Result<T, String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    // serde_yaml hands every scalar over as text; these serve other deserializers.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

/// Any scalar (string, number, boolean) as its text.
#[derive(Debug)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a scalar (string, number or boolean)", |s| {
            Ok(Text(s.to_owned()))
        })
    }
}

/// A boolean written `true`/`false` (YAML 1.2) or `yes`/`no`/`on`/`off` (YAML 1.1, as
/// CodeBuild's own examples write them), in any case.
#[derive(Debug)]
pub(super) struct Flag(pub bool);

pub(super) fn parse_flag(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "invalid boolean `{text}`: expected yes, no, true or false"
        )),
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a boolean (yes, no, true or false)", |s| {
            parse_flag(s).map(Flag)
        })
    }
}

/// A sequence of scalars, each as its text; absent, empty or `null` is an empty list. A
/// lone scalar is refused: CodeBuild wants a sequence.
#[derive(Debug, Default)]
pub(super) struct TextList(pub Vec<String>);

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list: Option<Seq> = Deserialize::deserialize(d)?;
        Ok(TextList(list.map(|s| s.0).unwrap_or_default()))
    }
}

struct Seq(Vec<String>);

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SeqVisitor;
        impl<'de> Visitor<'de> for SeqVisitor {
            type Value = Seq;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq, A::Error> {
                let mut items = Vec::new();
                while let Some(Text(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Seq(items))
            }
        }
        d.deserialize_seq(SeqVisitor)
    }
}

/// The commands of a phase: a sequence of scalars as written, where null items (`-` alone,
/// `~`, `null`) and empty ones are left out, since CodeBuild reads them as empty commands
/// and runs nothing for them (a quoted `'~'` is a command); absent, empty or `null` is an
/// empty list. A lone scalar is refused, as for [`TextList`].
#[derive(Debug, Default)]
pub(super) struct CommandList(pub Vec<String>);

impl<'de> Deserialize<'de> for CommandList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list: Option<CommandSeq> = Deserialize::deserialize(d)?;
        Ok(CommandList(list.map(|s| s.0).unwrap_or_default()))
    }
}

struct CommandSeq(Vec<String>);

impl<'de> Deserialize<'de> for CommandSeq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Commands;
        impl<'de> Visitor<'de> for Commands {
            type Value = CommandSeq;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandSeq, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Option<Text>>()? {
                    if let Some(Text(command)) = item
                        && !command.is_empty()
                    {
                        items.push(command);
                    }
                }
                Ok(CommandSeq(items))
            }
        }
        d.deserialize_seq(Commands)
    }
}

/// A sequence of scalars, or one scalar standing for a list of one, as CodeBuild reads
/// `artifacts: files: imagedefinitions.json` (AWS's own ECS deployment examples write it
/// so); absent, empty or `null` is an empty list. A lone scalar that YAML reads as a number
/// or a boolean is taken in that reading's form (`1.10` becomes `1.1`): paths and globs are
/// never written so in practice.
#[derive(Debug, Default)]
pub(super) struct TextOrList(pub Vec<String>);

impl<'de> Deserialize<'de> for TextOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> Visitor<'de> for OneOrMany {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a sequence of strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(vec![v.to_owned()])
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Seq::deserialize(SeqAccessDeserializer::new(seq)).map(|s| s.0)
            }
        }
        d.deserialize_any(OneOrMany).map(TextOrList)
    }
}

/// A mapping kept in file order, keys as their text, duplicate keys refused at the
/// duplicate; absent, empty or `null` is empty.
#[derive(Debug)]
pub(super) struct Pairs<V>(pub Vec<(String, V)>);

impl<V> Default for Pairs<V> {
    fn default() -> Self {
        Pairs(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Pairs<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: Option<Map<V>> = Deserialize::deserialize(d)?;
        Ok(map.map(|m| Pairs(m.0)).unwrap_or_default())
    }
}

struct Map<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Map<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = Map<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map<V>, A::Error> {
                let mut pairs: Vec<(String, V)> = Vec::new();
                // Keys seen so far, hashed: a mapping of n keys is checked in O(n).
                let mut seen: HashSet<String> = HashSet::new();
                while let Some(key) = map.next_key_seed(UniqueKey(&seen))? {
                    seen.insert(key.clone());
                    let value = map.next_value()?;
                    pairs.push((key, value));
                }
                Ok(Map(pairs))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// A mapping key that must not repeat one already read: the error points at the repeat.
struct UniqueKey<'a>(&'a HashSet<String>);

impl<'de> DeserializeSeed<'de> for UniqueKey<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        scalar(d, "a scalar key", |key| {
            if self.0.contains(key) {
                Err(format!("duplicate key `{key}`"))
            } else {
                Ok(key.to_owned())
            }
        })
    }
}

/// A validation of a whole value, run by [`CheckedMap`] / [`CheckedSeq`].
pub(super) trait Check {
    fn check(&self) -> Result<(), String>;
}

/// A mapping deserialized as `T`, then checked; a failed check points at the mapping.
pub(super) struct CheckedMap<T>(pub T);

impl<'de, T: Deserialize<'de> + Check> Deserialize<'de> for CheckedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CheckedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Check> Visitor<'de> for CheckedVisitor<T> {
            type Value = CheckedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value = T::deserialize(MapAccessDeserializer::new(map))?;
                value.check().map_err(de::Error::custom)?;
                Ok(CheckedMap(value))
            }
        }
        d.deserialize_map(CheckedVisitor(PhantomData))
    }
}

/// A sequence deserialized as `T`, then checked; a failed check points at the sequence.
pub(super) struct CheckedSeq<T>(pub T);

impl<'de, T: Deserialize<'de> + Check> Deserialize<'de> for CheckedSeq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CheckedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Check> Visitor<'de> for CheckedVisitor<T> {
            type Value = CheckedSeq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value = T::deserialize(SeqAccessDeserializer::new(seq))?;
                value.check().map_err(de::Error::custom)?;
                Ok(CheckedSeq(value))
            }
        }
        d.deserialize_seq(CheckedVisitor(PhantomData))
    }
}

// `deserialize_with` helpers for the model's plain field types.

pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(|t| t.0)
}

pub(super) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Flag::deserialize(d).map(|f| f.0)
}

pub(super) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Option::<Flag>::deserialize(d)?.map(|f| f.0))
}

pub(super) fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    TextList::deserialize(d).map(|l| l.0)
}

pub(super) fn text_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    TextOrList::deserialize(d).map(|l| l.0)
}

/// A mapping of variables in file order, values as their text; a repeated name takes the
/// last value in the place of the first, as CodeBuild reads it (the outline warns).
pub(super) fn text_pairs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Variables;
    impl<'de> Visitor<'de> for Variables {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of names to values")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs: Vec<(String, String)> = Vec::new();
            // Name → index in `pairs`: a mapping of n names is read in O(n).
            let mut index: std::collections::HashMap<String, usize> = Default::default();
            while let Some(Text(name)) = map.next_key()? {
                let Text(value) = map.next_value()?;
                match index.get(&name) {
                    Some(&at) => pairs[at].1 = value,
                    None => {
                        index.insert(name.clone(), pairs.len());
                        pairs.push((name, value));
                    }
                }
            }
            Ok(pairs)
        }
    }
    d.deserialize_option(Variables)
}

pub(super) fn pairs<'de, D, V>(d: D) -> Result<Vec<(String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    Pairs::<V>::deserialize(d).map(|p| p.0)
}

/// A mapping or `null`/empty (the type's default).
pub(super) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn located<T: for<'de> Deserialize<'de>>(yaml: &str) -> (usize, usize, String) {
        let error = serde_yaml::from_str::<T>(yaml).err().expect("an error");
        let location = error.location().expect("a location");
        (location.line(), location.column(), error.to_string())
    }

    #[test]
    fn scalars_keep_the_text_as_written() {
        let list: TextList =
            serde_yaml::from_str("[3.10, 1, true, yes, 'q', 0x1F, ~, 1e3]").unwrap();
        assert_eq!(
            list.0,
            ["3.10", "1", "true", "yes", "q", "0x1F", "~", "1e3"]
        );
    }

    #[test]
    fn flags_take_yaml_1_1_spellings() {
        for (text, value) in [
            ("yes", true),
            ("No", false),
            ("TRUE", true),
            ("off", false),
            ("on", true),
        ] {
            assert_eq!(
                serde_yaml::from_str::<Flag>(text).unwrap().0,
                value,
                "{text}"
            );
        }
        let (line, column, message) = located::<Vec<Flag>>("- yes\n- maybe\n");
        assert_eq!((line, column), (2, 3));
        assert!(message.contains("invalid boolean `maybe`"), "{message}");
    }

    #[test]
    fn null_and_empty_lists_are_empty() {
        assert!(serde_yaml::from_str::<TextList>("~").unwrap().0.is_empty());
        assert!(serde_yaml::from_str::<TextList>("").unwrap().0.is_empty());
    }

    #[test]
    fn pairs_keep_file_order_and_refuse_repeats_at_the_repeat() {
        let pairs: Pairs<Text> = serde_yaml::from_str("b: 1\na: 2\nc: x\n").unwrap();
        let keys: Vec<&str> = pairs.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        let (line, column, message) = located::<Pairs<Text>>("a: 1\nb: 2\na: 3\n");
        assert_eq!((line, column), (3, 1));
        assert!(message.contains("duplicate key `a`"), "{message}");
    }

    #[test]
    fn a_failed_check_points_at_the_mapping() {
        #[derive(Deserialize)]
        struct Two {
            a: u32,
            b: u32,
        }
        impl Check for Two {
            fn check(&self) -> Result<(), String> {
                if self.a < self.b {
                    Ok(())
                } else {
                    Err("a must be below b".into())
                }
            }
        }
        #[derive(Deserialize)]
        struct Outer {
            #[expect(dead_code, reason = "a key of the document, read and not used")]
            x: u32,
            inner: CheckedMap<Two>,
        }
        let ok: Outer = serde_yaml::from_str("x: 1\ninner:\n  a: 1\n  b: 2\n").unwrap();
        assert_eq!(ok.inner.0.b, 2);
        let (line, column, message) = located::<Outer>("x: 1\ninner:\n  a: 3\n  b: 2\n");
        assert_eq!((line, column), (3, 3));
        assert!(message.contains("a must be below b"), "{message}");
    }
}
