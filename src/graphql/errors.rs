//! The one error pipeline of every transport: an extension of the schema gives each error
//! its stable `extensions.code` from the stage that raised it, not from its message.
//!
//! - the document does not parse: `GRAPHQL_PARSE_FAILED`;
//! - async-graphql's own limits (recursion depth, directives, depth, complexity):
//!   `QUERY_TOO_COMPLEX`;
//! - a variable's value does not fit its argument, or an argument does not coerce to its
//!   type (a malformed `DateTime`, an unknown enum value): `VALIDATION_FAILED` + `field`;
//! - any other document error (unknown field, unknown operation): `GRAPHQL_VALIDATION_FAILED`;
//! - an execution error without a code: `INTERNAL`, its message replaced and its cause logged;
//! - an `INTERNAL` error of an operation one of whose database connections came back
//!   broken (the session ended under a statement): `UNAVAILABLE`.
//!
//! Errors that already carry a code (every [`AppError`](crate::error::AppError), the cost
//! limit's) keep it. Every `INTERNAL` error gets the operation's `requestId`. The same
//! finishing step puts the response's fields in the order the operation asked ([`order`]).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Pos, Positioned, Request, Response, ServerError, ServerResult};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::db::LossWitness;
use crate::error::{
    AppError, Code, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, INTERNAL_MESSAGE, RequestId,
    UNAVAILABLE_MESSAGE,
};
use crate::graphql::order;

/// The error pipeline of one operation, run by the schema's one extension
/// ([`super::pipeline`]). Its state is shared with the response stream of a
/// WebSocket operation, which async-graphql runs without the `request` hook.
#[derive(Default)]
pub(crate) struct Coding {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    request_id: Option<String>,
    /// The parsed document: where an uncoded error points (an argument?) and the order
    /// of the response's fields ([`order`]).
    document: Option<Arc<ExecutableDocument>>,
    /// The operation the request names, if any.
    operation_name: Option<String>,
    executed: bool,
    /// Told when a connection of the operation came back broken.
    witness: LossWitness,
}

impl State {
    /// Every argument of the document, by the positions of its name and of its value;
    /// worked out only for a response with an error that needs it.
    fn arguments(&self) -> HashMap<Pos, Argument> {
        self.document.as_deref().map(arguments).unwrap_or_default()
    }
}

/// An argument in the document: its name, and the variable it takes its value from.
#[derive(Clone)]
struct Argument {
    name: String,
    variable: Option<String>,
}

impl Coding {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Finishes a response on every transport: its fields in the order the operation asked
/// for them ([`order`]), every error its code, and `INTERNAL` ones the request id.
fn finish(mut response: Response, state: &mut State) -> Response {
    if let Some(document) = &state.document {
        order::reorder(document, state.operation_name.as_deref(), &mut response.data);
    }
    let request_id = state.request_id.get_or_insert_with(|| RequestId::new().0).clone();
    let uncoded = response.errors.iter().any(|error| code_of(error).is_none());
    let arguments = if uncoded && state.executed { state.arguments() } else { HashMap::new() };
    let lost = state.witness.saw_loss();
    for error in &mut response.errors {
        if code_of(error).is_none() {
            let code = if state.executed {
                execution_code(error, &arguments, &request_id)
            } else {
                GRAPHQL_VALIDATION_FAILED
            };
            set_code(error, code);
        }
        if lost && code_of(error) == Some(Code::Internal.as_str()) {
            unavailable(error);
        }
        with_request_id(error, &request_id);
    }
    response
}

/// An `INTERNAL` error of an operation whose connection came back broken: the database
/// ended the session under a statement (a server stopping or restarting ends each with a
/// `FATAL` error, which reaches casefile without a kind of its own). Whether a commit cut
/// so took effect cannot be known; as for any `UNAVAILABLE`, the client tries again
/// (with `expectedVersion`, a second try of an update that did apply is refused).
fn unavailable(error: &mut ServerError) {
    tracing::warn!(error = %error.message, path = ?error.path, "statement cut by a lost connection");
    error.message = UNAVAILABLE_MESSAGE.to_owned();
    set_code(error, Code::Unavailable.as_str());
}

impl Coding {
    /// `request`: the response finished ([`finish`]).
    pub(crate) fn finish(&self, response: Response) -> Response {
        finish(response, &mut self.state())
    }

    /// `subscribe`: every response of the stream finished.
    pub(crate) fn finish_stream<'s>(
        &self,
        stream: BoxStream<'s, Response>,
    ) -> BoxStream<'s, Response> {
        let state = self.state.clone();
        stream.map(move |response| finish(response, &mut lock(&state))).boxed()
    }

    /// `prepare_request`: remembers the request id and operation name, and parses the
    /// document (once: execution reuses it), so that what fails later in async-graphql's
    /// parse step is one of its limits, never the syntax.
    pub(crate) fn prepare(&self, request: &mut Request) -> ServerResult<()> {
        let request_id = request
            .data
            .get(&TypeId::of::<RequestId>())
            .and_then(|data| data.downcast_ref::<RequestId>())
            .map(|id| id.0.clone());
        {
            let mut state = self.state();
            state.request_id = request_id;
            state.operation_name = request.operation_name.clone();
        }
        // The text's nesting first: the parser recurses without a limit of its own.
        crate::graphql::limits::nesting::check(&request.query)?;
        if let Err(mut error) = request.parsed_query() {
            set_code(&mut error, GRAPHQL_PARSE_FAILED);
            return Err(error);
        }
        Ok(())
    }

    /// `parse_query`: keeps the document (`shared`: the cache's copy, when the cache
    /// holds it), or codes the error of async-graphql's own limits.
    pub(crate) fn parsed(
        &self,
        result: ServerResult<ExecutableDocument>,
        shared: Option<Arc<ExecutableDocument>>,
    ) -> ServerResult<ExecutableDocument> {
        match result {
            Ok(document) => {
                let kept = shared.unwrap_or_else(|| Arc::new(document.clone()));
                self.state().document = Some(kept);
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

    /// `validation`: codes the errors of a document that failed validation.
    pub(crate) fn refused(&self, mut errors: Vec<ServerError>) -> Vec<ServerError> {
        let arguments = self.state().arguments();
        for error in &mut errors {
            if code_of(error).is_some() {
                continue;
            }
            let argument = error.locations.first().and_then(|pos| arguments.get(pos));
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
        errors
    }

    /// The witness the operation's connections report a broken connection to.
    pub(crate) fn witness(&self) -> LossWitness {
        self.state().witness.clone()
    }

    /// `execute`: from here on an uncoded error is an execution error. Returns the
    /// witness the operation's connections report a broken connection to.
    pub(crate) fn executing(&self) -> LossWitness {
        let mut state = self.state();
        state.executed = true;
        state.witness.clone()
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
fn execution_code(
    error: &mut ServerError,
    arguments: &HashMap<Pos, Argument>,
    request_id: &str,
) -> &'static str {
    let argument = error.locations.first().and_then(|pos| arguments.get(pos)).cloned();
    match argument {
        Some(argument) => {
            let field = argument.variable.unwrap_or(argument.name);
            error.extensions.get_or_insert_with(Default::default).set("field", field);
            Code::ValidationFailed.as_str()
        }
        None => {
            tracing::error!(request_id, error = %error.message, path = ?error.path, "uncoded error in execution");
            error.message = INTERNAL_MESSAGE.to_owned();
            Code::Internal.as_str()
        }
    }
}

/// Whether any error of the response is `INTERNAL` already (an [`AppError`]'s).
pub(crate) fn has_internal(response: &Response) -> bool {
    response.errors.iter().any(|error| code_of(error) == Some(Code::Internal.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, Variables};

    struct Query;

    /// What diesel reports for PostgreSQL's `FATAL 57P01`: a database error of no kind.
    fn session_ended() -> AppError {
        AppError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("terminating connection due to administrator command".to_owned()),
        ))
    }

    #[Object]
    impl Query {
        /// Fails without a code, as a bug would.
        async fn broken(&self) -> async_graphql::Result<i32> {
            Err("connection refused at 10.0.0.1".into())
        }

        /// Fails as a statement does whose session the database ended: its connection
        /// came back broken.
        async fn cut(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<i32> {
            ctx.data::<LossWitness>()?.note();
            Err(session_ended().into())
        }

        /// Fails as that statement does when its connection is not yet seen closed.
        async fn fatal(&self) -> async_graphql::Result<i32> {
            Err(session_ended().into())
        }

        /// Doubles `n`.
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
    }

    async fn run(query: &str, variables: serde_json::Value) -> Response {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(crate::graphql::pipeline::Pipeline::default())
            .finish();
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(RequestId("request-1".to_owned()));
        schema.execute(request).await
    }

    #[tokio::test]
    async fn an_internal_error_while_the_database_does_not_answer_is_unavailable() {
        // Nothing listens on port 1: every connection is refused.
        let pool = crate::db::pool::build(
            "postgresql://casefile@127.0.0.1:1/casefile",
            1,
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(1),
        )
        .expect("pool");
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(crate::graphql::pipeline::Pipeline::default())
            .data(pool)
            .finish();
        let request = Request::new("{ fatal }").data(RequestId("request-1".to_owned()));
        let response = schema.execute(request).await;
        assert_eq!(response.errors[0].message, UNAVAILABLE_MESSAGE);
        assert_eq!(extension(&response, "code"), Some(&"UNAVAILABLE".into()));
    }

    fn extension<'a>(response: &'a Response, name: &str) -> Option<&'a async_graphql::Value> {
        response.errors.first()?.extensions.as_ref()?.get(name)
    }

    #[tokio::test]
    async fn an_uncoded_execution_error_is_internal_with_its_request_id_and_without_its_cause() {
        let response = run("{ broken }", serde_json::json!({})).await;
        assert_eq!(response.errors[0].message, INTERNAL_MESSAGE);
        assert_eq!(extension(&response, "code"), Some(&"INTERNAL".into()));
        assert_eq!(extension(&response, "requestId"), Some(&"request-1".into()));
    }

    #[tokio::test]
    async fn an_internal_error_of_an_operation_whose_connection_broke_is_unavailable() {
        let response = run("{ cut }", serde_json::json!({})).await;
        assert_eq!(response.errors[0].message, UNAVAILABLE_MESSAGE);
        assert_eq!(extension(&response, "code"), Some(&"UNAVAILABLE".into()));
        assert_eq!(extension(&response, "requestId"), None);
        // The same error with every connection intact is the bug it looks like.
        let response = run("{ broken }", serde_json::json!({})).await;
        assert_eq!(extension(&response, "code"), Some(&"INTERNAL".into()));
    }

    #[tokio::test]
    async fn a_variable_that_does_not_fit_its_argument_is_bad_input_named_by_the_variable() {
        let response =
            run("query($count: Int!) { double(n: $count) }", serde_json::json!({ "count": "x" }))
                .await;
        assert_eq!(extension(&response, "code"), Some(&"VALIDATION_FAILED".into()));
        assert_eq!(extension(&response, "field"), Some(&"count".into()));
        assert_eq!(extension(&response, "requestId"), None);
    }

    #[tokio::test]
    async fn document_errors_are_coded_by_the_stage_that_found_them() {
        let cases = [
            ("{ double(n: ", GRAPHQL_PARSE_FAILED),
            ("{ double(n: \"x\") }", GRAPHQL_VALIDATION_FAILED),
            ("{ triple(n: 1) }", GRAPHQL_VALIDATION_FAILED),
            ("query A { double(n: 1) } query B { double(n: 2) }", GRAPHQL_VALIDATION_FAILED),
        ];
        for (query, code) in cases {
            let response = run(query, serde_json::json!({})).await;
            assert_eq!(extension(&response, "code"), Some(&code.into()), "{query}");
        }
    }
}
