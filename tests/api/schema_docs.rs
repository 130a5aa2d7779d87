//! Every type, field, argument, input field and enum value of the schema has a description
//! a client developer can read in GraphiQL (built-in scalars and `__` types excepted).

use casefile::config::Limits;
use serde_json::Value;

const INTROSPECTION: &str = r#"{
  __schema {
    types {
      name
      kind
      description
      fields(includeDeprecated: true) { name description args { name description } }
      inputFields { name description }
      enumValues(includeDeprecated: true) { name description }
    }
  }
}"#;

/// The scalars the GraphQL specification defines; they carry the specification's meaning.
const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

fn undocumented(description: &Value) -> bool {
    description.as_str().is_none_or(|text| text.trim().is_empty())
}

/// The schema coordinates (`Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`) that
/// have no description.
fn undocumented_coordinates(schema: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let types = schema["__schema"]["types"].as_array().expect("introspection lists types");
    for ty in types {
        let name = ty["name"].as_str().expect("a type has a name");
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        if undocumented(&ty["description"]) {
            missing.push(name.to_owned());
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            let field_name = field["name"].as_str().unwrap_or_default();
            if undocumented(&field["description"]) {
                missing.push(format!("{name}.{field_name}"));
            }
            for arg in field["args"].as_array().into_iter().flatten() {
                if undocumented(&arg["description"]) {
                    let arg_name = arg["name"].as_str().unwrap_or_default();
                    missing.push(format!("{name}.{field_name}({arg_name}:)"));
                }
            }
        }
        for input in ty["inputFields"].as_array().into_iter().flatten() {
            if undocumented(&input["description"]) {
                missing.push(format!("{name}.{}", input["name"].as_str().unwrap_or_default()));
            }
        }
        for value in ty["enumValues"].as_array().into_iter().flatten() {
            if undocumented(&value["description"]) {
                missing.push(format!("{name}.{}", value["name"].as_str().unwrap_or_default()));
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_type_field_argument_input_field_and_enum_value_has_a_description() {
    let schema = casefile::graphql::build(None, &Limits::default());
    let response = schema.execute(INTROSPECTION).await;
    assert!(response.errors.is_empty(), "introspection failed: {:?}", response.errors);
    let data = response.data.into_json().expect("introspection data as JSON");
    let missing = undocumented_coordinates(&data);
    assert!(
        missing.is_empty(),
        "{} schema elements have no description:\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn a_missing_description_is_reported_by_its_schema_coordinate() {
    let schema = serde_json::json!({ "__schema": { "types": [
        { "name": "String", "kind": "SCALAR", "description": null },
        { "name": "__Type", "kind": "OBJECT", "description": null },
        { "name": "Thing", "kind": "OBJECT", "description": "A thing.", "fields": [
            { "name": "a", "description": "A.", "args": [{ "name": "x", "description": null }] },
            { "name": "b", "description": " ", "args": [] }
        ] },
        { "name": "ThingInput", "kind": "INPUT_OBJECT", "description": null,
          "inputFields": [{ "name": "c", "description": null }] },
        { "name": "Colour", "kind": "ENUM", "description": "A colour.",
          "enumValues": [{ "name": "RED", "description": null }, { "name": "BLUE", "description": "Blue." }] }
    ] } });
    assert_eq!(
        undocumented_coordinates(&schema),
        ["Thing.a(x:)", "Thing.b", "ThingInput", "ThingInput.c", "Colour.RED"]
    );
}
