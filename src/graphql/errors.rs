//! The one error pipeline of every transport: an extension of the schema gives each error
//! its stable `extensions.code` from the stage that raised it, not from its message.
//!
//! - the document does not parse: `GRAPHQL_PARSE_FAILED`;
//! - async-graphql's own limits (recursion depth, directives, depth, complexity):
//!   `QUERY_TOO_COMPLEX`;
//! - a variable's value does not fit its argument, or an argument does not coerce to its
//!   type (a malformed `DateTime`, an unknown enum value): `VALIDATION_FAILED` + `field`;
//! - any other document error (unknown field, unknown operation): `GRAPHQL_VALIDATION_FAILED`;
//! - an execution error without a code: `INTERNAL`, its message replaced and its cause logged.
//!
//! Errors that already carry a code (every [`AppError`](crate::error::AppError), the cost
//! limit's) keep it. Every `INTERNAL` error gets the operation's `requestId`.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    Pos, Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::error::{
    AppError, Code, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, INTERNAL_MESSAGE, RequestId,
};

/// Registers the error pipeline on a schema (`Schema::build(…).extension(ErrorCodes)`).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Coding::default())
    }
}

/// The pipeline of one operation.
#[derive(Default)]
struct Coding {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    request_id: Option<String>,
    /// Every argument of the document, by the positions of its name and of its value.
    arguments: HashMap<Pos, Argument>,
    executed: bool,
}

/// An argument in the document: its name, and the variable it takes its value from.
#[derive(Clone)]
struct Argument {
    name: String,
    variable: Option<String>,
}

impl Coding {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Coding {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let mut state = self.state();
        let request_id = state.request_id.get_or_insert_with(|| RequestId::new().0).clone();
        for error in &mut response.errors {
            if code_of(error).is_none() {
                let code = if state.executed {
                    execution_code(error, &state.arguments)
                } else {
                    GRAPHQL_VALIDATION_FAILED
                };
                set_code(error, code);
            }
            with_request_id(error, &request_id);
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request_id = request
            .data
            .get(&TypeId::of::<RequestId>())
            .and_then(|data| data.downcast_ref::<RequestId>())
            .map(|id| id.0.clone());
        self.state().request_id = request_id;
        // Parsed here (once: execution reuses the document), so that what fails later in
        // async-graphql's parse step is one of its limits, never the syntax.
        if let Err(mut error) = request.parsed_query() {
            set_code(&mut error, GRAPHQL_PARSE_FAILED);
            return Err(error);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        match next.run(ctx, query, variables).await {
            Ok(document) => {
                self.state().arguments = arguments(&document);
                Ok(document)
            }
            Err(mut error) => {
                if code_of(&error).is_none() {
                    set_code(&mut error, Code::QueryTooComplex.as_str());
                }
                Err(error)
            }
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let mut errors = match next.run(ctx).await {
            Ok(result) => return Ok(result),
            Err(errors) => errors,
        };
        let state = self.state();
        for error in &mut errors {
            if code_of(error).is_some() {
                continue;
            }
            let argument = error.locations.first().and_then(|pos| state.arguments.get(pos));
            match argument {
                // Rules report at a position; async-graphql's depth and complexity limits do not.
                _ if error.locations.is_empty() => set_code(error, Code::QueryTooComplex.as_str()),
                Some(Argument { variable: Some(variable), .. }) => {
                    let variable = variable.clone();
                    set_code(error, Code::ValidationFailed.as_str());
                    error.extensions.get_or_insert_with(Default::default).set("field", variable);
                }
                _ => set_code(error, GRAPHQL_VALIDATION_FAILED),
            }
        }
        Err(errors)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.state().executed = true;
        next.run(ctx, operation_name).await
    }
}

/// The response of an operation that could not start (its viewer could not be read).
pub fn response(error: &AppError, request_id: &RequestId) -> Response {
    let error = async_graphql::Error::from(error);
    let mut error =
        ServerError { extensions: error.extensions, ..ServerError::new(error.message, None) };
    with_request_id(&mut error, &request_id.0);
    Response::from_errors(vec![error])
}

/// Gives an `INTERNAL` error the id its cause is logged with.
fn with_request_id(error: &mut ServerError, request_id: &str) {
    if code_of(error) == Some(Code::Internal.as_str()) {
        error.extensions.get_or_insert_with(Default::default).set("requestId", request_id);
    }
}

/// The code of an execution error that has none: an argument that failed to coerce
/// (reported at its value's position) is bad input; anything else is internal.
fn execution_code(error: &mut ServerError, arguments: &HashMap<Pos, Argument>) -> &'static str {
    let argument = error.locations.first().and_then(|pos| arguments.get(pos)).cloned();
    match argument {
        Some(argument) => {
            let field = argument.variable.unwrap_or(argument.name);
            error.extensions.get_or_insert_with(Default::default).set("field", field);
            Code::ValidationFailed.as_str()
        }
        None => {
            tracing::error!(error = %error.message, path = ?error.path, "uncoded error in execution");
            error.message = INTERNAL_MESSAGE.to_owned();
            Code::Internal.as_str()
        }
    }
}

fn code_of(error: &ServerError) -> Option<&str> {
    error.extensions.as_ref()?.get("code").and_then(|code| match code {
        async_graphql::Value::String(code) => Some(code.as_str()),
        _ => None,
    })
}

fn set_code(error: &mut ServerError, code: &str) {
    error.extensions.get_or_insert_with(Default::default).set("code", code);
}

/// The arguments of every field and directive of the document, by position.
fn arguments(document: &ExecutableDocument) -> HashMap<Pos, Argument> {
    let mut found = HashMap::new();
    for (_, operation) in document.operations.iter() {
        collect(&operation.node.selection_set, &mut found);
    }
    for fragment in document.fragments.values() {
        collect(&fragment.node.selection_set, &mut found);
    }
    found
}

fn collect(selection_set: &Positioned<SelectionSet>, found: &mut HashMap<Pos, Argument>) {
    for selection in &selection_set.node.items {
        let (directives, children) = match &selection.node {
            Selection::Field(field) => {
                record(&field.node.arguments, found);
                (&field.node.directives, Some(&field.node.selection_set))
            }
            Selection::FragmentSpread(spread) => (&spread.node.directives, None),
            Selection::InlineFragment(inline) => {
                (&inline.node.directives, Some(&inline.node.selection_set))
            }
        };
        for directive in directives {
            record(&directive.node.arguments, found);
        }
        if let Some(children) = children {
            collect(children, found);
        }
    }
}

fn record(
    arguments: &[(Positioned<async_graphql::Name>, Positioned<async_graphql_value::Value>)],
    found: &mut HashMap<Pos, Argument>,
) {
    for (name, value) in arguments {
        let variable = match &value.node {
            async_graphql_value::Value::Variable(variable) => Some(variable.to_string()),
            // A list or object with a variable inside: the argument names the input.
            other if other.clone().into_const_with(|_| Err(())).is_err() => {
                Some(name.node.to_string())
            }
            _ => None,
        };
        let argument = Argument { name: name.node.to_string(), variable };
        found.insert(name.pos, argument.clone());
        found.insert(value.pos, argument);
    }
}
