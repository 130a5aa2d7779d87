//! Every string a GraphQL request carries, in its variables (JSON values' keys included)
//! and in its document's literals, is text the database can hold: no NUL character
//! (U+0000). One check for every argument of every field, before validation: a NUL bound
//! to a statement fails it, an `INTERNAL` error instead of the client's own mistake.

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Pos, Positioned, Request, ServerError, ServerResult, Value};

use crate::error::Code;
use crate::models::storable;

/// `VALIDATION_FAILED` on `field` (a variable or an argument) when a string of the request
/// holds a NUL character.
pub fn check(request: &mut Request) -> ServerResult<()> {
    for (name, value) in request.variables.iter() {
        if !const_value(value) {
            return Err(refused(name.as_str(), None));
        }
    }
    let document = request.parsed_query()?;
    match document_literals(document) {
        Some((name, pos)) => Err(refused(&name, Some(pos))),
        None => Ok(()),
    }
}

fn refused(field: &str, pos: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(format!("`{field}` is {}", storable::TEXT_RULE), pos);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", Code::ValidationFailed.as_str());
    extensions.set("field", field);
    error
}

fn const_value(value: &Value) -> bool {
    match value {
        Value::String(s) => storable::text(s),
        Value::Enum(name) => storable::text(name.as_str()),
        Value::List(items) => items.iter().all(const_value),
        Value::Object(map) => {
            map.iter().all(|(key, item)| storable::text(key.as_str()) && const_value(item))
        }
        Value::Null | Value::Number(_) | Value::Boolean(_) | Value::Binary(_) => true,
    }
}

/// The first argument (its name and position) whose literal holds a NUL, if any.
fn document_literals(document: &ExecutableDocument) -> Option<(String, Pos)> {
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value
                && !const_value(&default.node)
            {
                return Some((definition.node.name.node.to_string(), default.pos));
            }
        }
        let found = directives(&operation.node.directives)
            .or_else(|| selection_set(&operation.node.selection_set));
        if found.is_some() {
            return found;
        }
    }
    for fragment in document.fragments.values() {
        let found = directives(&fragment.node.directives)
            .or_else(|| selection_set(&fragment.node.selection_set));
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The first argument (its name and position) whose literal holds a NUL: the literal
/// with its variables read as null (they are checked with the request's variables).
macro_rules! refused_argument {
    ($list:expr) => {
        $list.iter().find_map(|(name, argument): &(Positioned<Name>, _)| {
            let literal = argument
                .node
                .clone()
                .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null));
            let storable = literal.as_ref().map_or(true, const_value);
            (!storable).then(|| (name.node.to_string(), argument.pos))
        })
    };
}

fn directives(list: &[Positioned<Directive>]) -> Option<(String, Pos)> {
    list.iter().find_map(|directive| refused_argument!(directive.node.arguments))
}

fn selection_set(set: &Positioned<SelectionSet>) -> Option<(String, Pos)> {
    set.node.items.iter().find_map(|selection| match &selection.node {
        Selection::Field(field) => refused_argument!(field.node.arguments)
            .or_else(|| directives(&field.node.directives))
            .or_else(|| selection_set(&field.node.selection_set)),
        Selection::FragmentSpread(spread) => directives(&spread.node.directives),
        Selection::InlineFragment(inline) => directives(&inline.node.directives)
            .or_else(|| selection_set(&inline.node.selection_set)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(query: &str, variables: serde_json::Value) -> Option<(String, String)> {
        let mut request =
            Request::new(query).variables(async_graphql::Variables::from_json(variables));
        check(&mut request).err().map(|error| {
            let ext = error.extensions.expect("extensions");
            let text = |key: &str| match ext.get(key) {
                Some(Value::String(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (text("code"), text("field"))
        })
    }

    #[test]
    fn a_nul_anywhere_in_a_request_is_refused_on_its_field() {
        let refused = |field: &str| Some(("VALIDATION_FAILED".to_owned(), field.to_owned()));
        let fine = "query($n: String) { cases(filter: { search: $n }) { totalCount } }";
        assert_eq!(code(fine, serde_json::json!({ "n": "'; drop table cases; --" })), None);
        assert_eq!(code(fine, serde_json::json!({ "n": "a\u{0}" })), refused("n"));
        assert_eq!(code(fine, serde_json::json!({ "n": { "raw": ["\u{0}"] } })), refused("n"));
        assert_eq!(code(fine, serde_json::json!({ "n": { "\u{0}": 1 } })), refused("n"));
        assert_eq!(
            code(
                "{ cases(filter: { search: \"a\\u0000\" }) { totalCount } }",
                serde_json::json!({})
            ),
            refused("filter")
        );
        assert_eq!(
            code(
                "{ a: viewer { ...F } } fragment F on User { x(y: [\"\\u0000\"]) }",
                serde_json::json!({})
            ),
            refused("y")
        );
        assert_eq!(
            code("query($s: String = \"\\u0000\") { viewer { id } }", serde_json::json!({})),
            refused("s")
        );
    }
}
