//! The limits every operation is measured against before anything runs: cost (which
//! counts pages, see [`measure`] for the rule), depth, aliases, root fields and
//! directives.
//!
//! Over a limit, the request fails with `QUERY_TOO_COMPLEX` and nothing executes. The
//! error says what was measured and is coded where it is made:
//! `extensions.code` is `QUERY_TOO_COMPLEX`, `extensions.measure` names the limit
//! (`DEPTH`, `ALIASES`, `ROOT_FIELDS`, `DIRECTIVES` or `COST`), `extensions.limit` is the
//! limit and `extensions.cost` the operation's measured value of it. The same check runs
//! on HTTP and on the WebSocket: it is a schema extension.

pub mod measure;
pub mod nesting;

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{ErrorExtensions, Pos, Positioned, Request, ServerError, ServerResult};

use crate::config::Limits;
use crate::error::{AppError, Code, GRAPHQL_VALIDATION_FAILED};
use crate::graphql::selected_operation;
use measure::{Measures, NESTING_CEILING, Shapes, Unmeasurable};

/// Which limit an operation went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Depth { limit: usize, depth: usize },
    Aliases { limit: usize, aliases: usize },
    RootFields { limit: usize, fields: usize },
    Directives { limit: usize, directives: usize },
    Cost { limit: u64, cost: u64 },
}

impl Exceeded {
    /// The first limit `measures` go over, checked in the order depth, aliases, root
    /// fields, directives, cost.
    pub fn check(measures: Measures, limits: &Limits) -> Option<Exceeded> {
        let max_cost = u64::try_from(limits.max_complexity).unwrap_or(u64::MAX);
        if measures.depth > limits.max_depth {
            Some(Exceeded::Depth { limit: limits.max_depth, depth: measures.depth })
        } else if measures.aliases > limits.max_aliases {
            Some(Exceeded::Aliases { limit: limits.max_aliases, aliases: measures.aliases })
        } else if measures.root_fields > limits.max_root_fields {
            Some(Exceeded::RootFields {
                limit: limits.max_root_fields,
                fields: measures.root_fields,
            })
        } else if measures.directives > limits.max_directives {
            Some(Exceeded::Directives {
                limit: limits.max_directives,
                directives: measures.directives,
            })
        } else if measures.cost > max_cost {
            Some(Exceeded::Cost { limit: max_cost, cost: measures.cost })
        } else {
            None
        }
    }

    /// The request error: coded, with the limit and the measured value.
    pub fn into_server_error(self, pos: Pos) -> ServerError {
        let (measure, limit, value, message) = match self {
            Exceeded::Depth { limit, depth } => (
                "DEPTH",
                limit as u64,
                depth as u64,
                format!("the query nests fields {depth} deep, more than the limit of {limit}"),
            ),
            Exceeded::Aliases { limit, aliases } => (
                "ALIASES",
                limit as u64,
                aliases as u64,
                format!(
                    "the query asks {aliases} fields under an alias, more than the limit of {limit}"
                ),
            ),
            Exceeded::RootFields { limit, fields } => (
                "ROOT_FIELDS",
                limit as u64,
                fields as u64,
                format!(
                    "the operation selects {fields} root fields, more than the limit of {limit}: \
                     send them as separate operations"
                ),
            ),
            Exceeded::Directives { limit, directives } => (
                "DIRECTIVES",
                limit as u64,
                directives as u64,
                format!(
                    "the operation carries {directives} directives, more than the limit of {limit}"
                ),
            ),
            Exceeded::Cost { limit, cost } => (
                "COST",
                limit,
                cost,
                format!(
                    "the query costs {cost}, more than the limit of {limit}: ask for smaller \
                     pages (`first`/`last`) or fewer nested lists"
                ),
            ),
        };
        async_graphql::Error::from(AppError::Rule(Code::QueryTooComplex, message))
            .extend_with(|_, extensions| {
                extensions.set("measure", measure);
                extensions.set("limit", limit);
                extensions.set("cost", value);
            })
            .into_server_error(pos)
    }
}

/// Enforces [`Limits`]' depth and complexity on every operation (a stage of the
/// schema's one extension, [`super::pipeline`]).
pub struct QueryLimits {
    limits: Arc<Limits>,
    shapes: Arc<OnceLock<Shapes>>,
}

impl QueryLimits {
    pub fn new(limits: &Limits) -> Self {
        Self { limits: Arc::new(limits.clone()), shapes: Arc::default() }
    }

    /// Measures the operation a request runs; `Err` when it exceeds a limit (the schema's
    /// one extension runs this before validation, [`super::pipeline`]).
    pub(crate) fn check(
        &self,
        ctx: &ExtensionContext<'_>,
        request: &mut Request,
    ) -> ServerResult<()> {
        let name = request.operation_name.clone();
        let variables = std::mem::take(&mut request.variables);
        let result = self.measure(ctx, request, name.as_deref(), &variables);
        request.variables = variables;
        result
    }

    fn measure(
        &self,
        ctx: &ExtensionContext<'_>,
        request: &mut Request,
        name: Option<&str>,
        variables: &async_graphql::Variables,
    ) -> ServerResult<()> {
        // A document that does not parse fails with its parse error right after.
        let Ok(document) = request.parsed_query() else { return Ok(()) };
        let shapes = self.shapes.get_or_init(|| Shapes::from_sdl(&ctx.sdl()));
        for operation in operations(document, name) {
            let measured = measure::measure(shapes, document, &operation.node, variables);
            let refusal = match measured {
                Ok(measures) if measures.introspects && !self.limits.introspection => {
                    return Err(introspection_off(operation.pos));
                }
                Ok(measures) => Exceeded::check(measures, &self.limits),
                Err(Unmeasurable::TooDeep) => Some(Exceeded::Depth {
                    limit: self.limits.max_depth,
                    depth: NESTING_CEILING + 1,
                }),
                Err(Unmeasurable::Cycle(fragment)) => {
                    return Err(cycle_error(&fragment, operation.pos));
                }
            };
            if let Some(exceeded) = refusal {
                return Err(exceeded.into_server_error(operation.pos));
            }
        }
        Ok(())
    }
}

/// `__schema` or `__type` asked of a server started with `CASEFILE_INTROSPECTION=false`.
fn introspection_off(pos: Pos) -> ServerError {
    let message = "introspection is turned off on this server: read the schema from its \
                   published schema file";
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", GRAPHQL_VALIDATION_FAILED))
        .into_server_error(pos)
}

/// A fragment that spreads itself (directly or through others): invalid GraphQL.
fn cycle_error(fragment: &str, pos: Pos) -> ServerError {
    let message = format!("fragment `{fragment}` spreads itself");
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", GRAPHQL_VALIDATION_FAILED))
        .into_server_error(pos)
}

/// The operations a request may run: the one named, or the only one; every operation
/// when the name selects none (the request fails after validation then).
fn operations<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Vec<&'a Positioned<OperationDefinition>> {
    match selected_operation(document, name) {
        Some(operation) => vec![operation],
        None => document.operations.iter().map(|(_, operation)| operation).collect(),
    }
}
