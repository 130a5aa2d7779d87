//! A fast path for list items whose selected fields are all plain values.
//!
//! async-graphql resolves every field of every object as a boxed future of its own, run
//! through the schema's extension chain, with two registry lookups to describe it: about
//! 1,700 of them for a case page of 100 detections. Profiled under load, that machinery
//! took about a third of the server's CPU on the case page. An object whose selected
//! fields are plain values of the row (no arguments, no loaders, nothing that can fail)
//! gains nothing from it, so such an object is built here directly, field by field, into
//! the same [`Value`] async-graphql would build.
//!
//! Anything else in the selection (a fragment, a directive, an argument, a response key
//! asked twice, or a field the caller does not answer plainly) gives `None`, and the
//! caller resolves the object the usual way. The integration tests compare both paths'
//! answers for every plain field.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::{ScalarType, Value};

/// The object `set` asks of, each field's value given by `field(name, its selection)`;
/// `None` when the selection is not plain or `field` answers `None` for one of its fields.
pub fn object(
    set: &SelectionSet,
    type_name: &str,
    mut field: impl FnMut(&str, &SelectionSet) -> Option<Value>,
) -> Option<Value> {
    let mut map = IndexMap::with_capacity(set.items.len());
    for item in &set.items {
        let Selection::Field(selected) = &item.node else { return None };
        let selected = &selected.node;
        if !selected.directives.is_empty() || !selected.arguments.is_empty() {
            return None;
        }
        let name = selected.name.node.as_str();
        let value = if name == "__typename" {
            Value::String(type_name.to_owned())
        } else {
            field(name, &selected.selection_set.node)?
        };
        // The same key twice would need the two selections merged: the usual way does that.
        if map.insert(selected.response_key().node.clone(), value).is_some() {
            return None;
        }
    }
    Some(Value::Object(map))
}

/// Whether `set` selects plain fields only (see [`object`]), each named in `names`: for
/// objects that load something before they are built, so that nothing is loaded for an
/// object that then goes the usual way.
pub fn selects_only(set: &SelectionSet, names: &[&str]) -> bool {
    let mut keys = Vec::with_capacity(set.items.len());
    set.items.iter().all(|item| {
        let Selection::Field(selected) = &item.node else { return false };
        let selected = &selected.node;
        let key = selected.response_key().node.as_str();
        let plain = selected.directives.is_empty()
            && selected.arguments.is_empty()
            && (selected.name.node == "__typename" || names.contains(&selected.name.node.as_str()))
            && !keys.contains(&key);
        keys.push(key);
        plain
    })
}

/// The selection of the field `name` in `set`, when `set` selects it (by name, aliased or not).
pub fn selection<'a>(set: &'a SelectionSet, name: &str) -> Option<&'a SelectionSet> {
    set.items.iter().find_map(|item| match &item.node {
        Selection::Field(selected) if selected.node.name.node == name => {
            Some(&selected.node.selection_set.node)
        }
        _ => None,
    })
}

/// A list of objects, each built by `item`; `None` when one of them is not plain.
pub fn list<T>(
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(T) -> Option<Value>,
) -> Option<Value> {
    items.into_iter().map(&mut item).collect::<Option<Vec<_>>>().map(Value::List)
}

/// A text, as async-graphql's `String` scalar answers it.
pub fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// An optional text, null when absent.
pub fn optional_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// Any scalar, through its own `ScalarType` conversion (dates, numbers, booleans).
pub fn scalar<T: ScalarType>(value: &T) -> Value {
    value.to_value()
}

/// An optional scalar, null when absent.
pub fn optional_scalar<T: ScalarType>(value: Option<&T>) -> Value {
    value.map_or(Value::Null, ScalarType::to_value)
}

/// An enum's GraphQL name.
pub fn enumeration<T: async_graphql::EnumType>(value: T) -> Value {
    async_graphql::resolver_utils::enum_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};

    fn key(name: &str) -> async_graphql::Name {
        async_graphql::Name::new(name)
    }

    fn selection(doc: &ExecutableDocument) -> &SelectionSet {
        match &doc.operations {
            DocumentOperations::Single(op) => &op.node.selection_set.node,
            DocumentOperations::Multiple(_) => unreachable!("one operation"),
        }
    }

    fn answer(name: &str, _: &SelectionSet) -> Option<Value> {
        match name {
            "a" => Some(text("one")),
            "b" => Some(Value::from(2)),
            _ => None,
        }
    }

    #[test]
    fn plain_fields_are_built_under_their_response_keys_in_order() {
        let doc = parse_query("{ b first: a __typename }").expect("a document");
        let value = object(selection(&doc), "T", answer).expect("plain");
        let expected = Value::Object(IndexMap::from([
            (key("b"), Value::from(2)),
            (key("first"), text("one")),
            (key("__typename"), text("T")),
        ]));
        assert_eq!(value, expected);
    }

    #[test]
    fn anything_not_plain_falls_back_to_the_usual_way() {
        for query in [
            "{ a c }",                          // a field the caller does not answer
            "{ a ...F } fragment F on T { b }", // a fragment spread
            "{ a ... on T { b } }",             // an inline fragment
            "{ a @include(if: true) }",         // a directive
            "{ a(x: 1) }",                      // an argument
            "{ a a }",                          // a key asked twice
            "{ x: a x: b }",                    // a key asked twice through aliases
        ] {
            let doc = parse_query(query).expect("a document");
            assert_eq!(object(selection(&doc), "T", answer), None, "{query}");
        }
    }

    #[test]
    fn selects_only_accepts_plain_fields_of_the_names_given() {
        let plain = parse_query("{ a b x: a __typename }").expect("a document");
        assert!(selects_only(selection(&plain), &["a", "b"]));
        assert!(!selects_only(selection(&plain), &["a"]), "b is not among the names");
        for query in
            ["{ a ...F } fragment F on T { b }", "{ a @skip(if: false) }", "{ a(x: 1) }", "{ a a }"]
        {
            let doc = parse_query(query).expect("a document");
            assert!(!selects_only(selection(&doc), &["a", "b"]), "{query}");
        }
        assert!(super::selection(selection(&plain), "b").is_some());
        assert!(super::selection(selection(&plain), "c").is_none());
    }

    #[test]
    fn a_list_is_plain_only_when_every_item_is() {
        assert_eq!(
            list([1, 2], |n| Some(Value::from(n))),
            Some(Value::List(vec![1.into(), 2.into()]))
        );
        assert_eq!(list([1, 2], |n| (n == 1).then(|| Value::from(n))), None);
    }
}
