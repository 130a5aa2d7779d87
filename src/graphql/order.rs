//! Root fields in the order the operation asked for them. The roots are merged from one
//! object per domain, and async-graphql answers a merged object's fields grouped by the
//! part that owns them; the spec asks for the selection set's order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, SelectionSet};
use async_graphql::{Positioned, Response, ServerResult, Value, Variables};

/// Registers the ordering on a schema.
pub struct SelectionOrder;

impl ExtensionFactory for SelectionOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Ordering::default())
    }
}

/// The root response keys of each operation of one document, by operation name.
#[derive(Default)]
struct Ordering {
    roots: Mutex<HashMap<Option<String>, Vec<String>>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Ordering {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let roots = match &document.operations {
            DocumentOperations::Single(operation) => {
                HashMap::from([(None, root_keys(&document, &operation.node.selection_set))])
            }
            DocumentOperations::Multiple(operations) => operations
                .iter()
                .map(|(name, operation)| {
                    (Some(name.to_string()), root_keys(&document, &operation.node.selection_set))
                })
                .collect(),
        };
        *self.roots.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = roots;
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let roots = self.roots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let (Some(keys), Value::Object(data)) =
            (roots.get(&operation_name.map(str::to_owned)), &mut response.data)
        {
            let mut ordered = async_graphql::indexmap::IndexMap::with_capacity(data.len());
            for key in keys {
                if let Some((key, value)) = data.shift_remove_entry(key.as_str()) {
                    ordered.insert(key, value);
                }
            }
            ordered.extend(data.drain(..));
            *data = ordered;
        }
        response
    }
}

/// The response keys of a selection set, fragments spread, in the order they first appear.
fn root_keys(
    document: &ExecutableDocument,
    selection_set: &Positioned<SelectionSet>,
) -> Vec<String> {
    let mut keys = Vec::new();
    collect(document, selection_set, &mut keys, 0);
    keys
}

fn collect(
    document: &ExecutableDocument,
    selection_set: &Positioned<SelectionSet>,
    keys: &mut Vec<String>,
    depth: usize,
) {
    use async_graphql::parser::types::Selection;
    // Fragment cycles are refused by validation; the bound only keeps this walk finite.
    if depth > 32 {
        return;
    }
    for selection in &selection_set.node.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                if !keys.iter().any(|k| k == key) {
                    keys.push(key.to_owned());
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    collect(document, &fragment.node.selection_set, keys, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(document, &inline.node.selection_set, keys, depth + 1);
            }
        }
    }
}
