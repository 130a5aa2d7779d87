//! Responses in the order the operation asked for their fields, at every level. async-graphql
//! resolves an object's fields concurrently and keeps them in the order they finish, so a
//! field that waits for a loader (`createdBy`) comes after the fields at hand, and a merged
//! root's parts answer as they finish; the spec asks for the selection set's order. The
//! error pipeline ([`super::errors`]) calls [`reorder`] on every response of every transport.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Value};

use crate::graphql::selected_operation;

/// The walk stops here; the depth limit refuses deeper operations long before.
const MAX_DEPTH: usize = 64;

/// Puts the fields of `data` (a response's data) in the order of the operation that ran.
pub fn reorder(document: &ExecutableDocument, operation_name: Option<&str>, data: &mut Value) {
    if let Some(operation) = selected_operation(document, operation_name) {
        reorder_by(document, &[&operation.node.selection_set], data, 0);
    }
}
/// Puts the keys of every object in `value` in the order of `sets` (the selection sets of
/// every field that shares this response key, merged as execution merges them), lists
/// element by element.
fn reorder_by(
    document: &ExecutableDocument,
    sets: &[&Positioned<SelectionSet>],
    value: &mut Value,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut fields = Vec::new();
    for set in sets {
        collect(document, set, &mut fields, 0);
    }
    order_values(document, &fields, value, depth);
}

/// Orders an object (or every object of a list, however nested) by `fields`, worked out
/// once for all the list's elements.
fn order_values(
    document: &ExecutableDocument,
    fields: &[Field<'_>],
    value: &mut Value,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::List(items) => {
            for item in items {
                order_values(document, fields, item, depth + 1);
            }
        }
        Value::Object(map) if in_order(fields, map) => {
            // Most objects answer in order already (their fields were at hand): only
            // their children may need it.
            let mut at = 0;
            for (key, child) in map.iter_mut() {
                while fields.get(at).is_some_and(|(k, _)| k != key) {
                    at += 1;
                }
                if let Some((_, children)) = fields.get(at)
                    && children.iter().any(|set| !set.node.items.is_empty())
                {
                    reorder_by(document, children, child, depth + 1);
                }
            }
        }
        Value::Object(map) => {
            let mut ordered = IndexMap::with_capacity(map.len());
            for (key, children) in fields {
                if let Some((key, mut child)) = map.shift_remove_entry(key.as_str()) {
                    if children.iter().any(|set| !set.node.items.is_empty()) {
                        reorder_by(document, children, &mut child, depth + 1);
                    }
                    ordered.insert(key, child);
                }
            }
            // Anything not named by the selection (nothing, today) keeps its place at the end.
            ordered.extend(map.drain(..));
            *map = ordered;
        }
        _ => {}
    }
}

/// Whether every key of `map` is in `fields`, in `fields`' order.
fn in_order(fields: &[Field<'_>], map: &IndexMap<Name, Value>) -> bool {
    let mut at = 0;
    map.keys().all(|key| {
        while fields.get(at).is_some_and(|(k, _)| k != key) {
            at += 1;
        }
        at < fields.len()
    })
}

/// A response key with the selection sets of every field answering under it.
type Field<'a> = (Name, Vec<&'a Positioned<SelectionSet>>);

/// The fields of a selection set, fragments spread, each key at its first appearance.
fn collect<'a>(
    document: &'a ExecutableDocument,
    selection_set: &'a Positioned<SelectionSet>,
    fields: &mut Vec<Field<'a>>,
    depth: usize,
) {
    // Fragment cycles are refused before execution; the bound only keeps this walk finite.
    if depth > MAX_DEPTH {
        return;
    }
    for selection in &selection_set.node.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let children = &field.node.selection_set;
                match fields.iter_mut().find(|(k, _)| k == key) {
                    Some((_, sets)) => sets.push(children),
                    None => fields.push((key.clone(), vec![children])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    collect(document, &fragment.node.selection_set, fields, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(document, &inline.node.selection_set, fields, depth + 1);
            }
        }
    }
}
