//! The schema's one extension: every stage an operation goes through besides
//! async-graphql's own, on every transport. One extension rather than one per concern:
//! async-graphql runs every field of a response through the `resolve` hook of each
//! extension registered (a boxed future per extension and field), so each extension
//! costs every field of every page.
//!
//! In order: the error pipeline ([`errors`]: codes, request ids, the response's field
//! order) around everything; the check that every string is storable ([`storable`]); the limits ([`limits`]) before validation; the validation
//! cache ([`documents`]); the operation's loaders and batching gate ([`operation`])
//! around execution.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::stream::BoxStream;

use crate::db::{DbPool, pool};
use crate::graphql::documents::{self, Documents, Hash};
use crate::graphql::errors::{self, Coding};
use crate::graphql::limits::QueryLimits;
use crate::graphql::{operation, storable};

/// Registers the pipeline on a schema. Without limits or a document cache (the error
/// pipeline's own tests), those stages are skipped.
#[derive(Default)]
pub struct Pipeline {
    limits: Option<Arc<QueryLimits>>,
    documents: Option<Arc<Documents>>,
}

impl Pipeline {
    pub fn new(limits: QueryLimits, documents: Arc<Documents>) -> Self {
        Self { limits: Some(Arc::new(limits)), documents: Some(documents) }
    }
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Stages {
            coding: Coding::default(),
            limits: self.limits.clone(),
            documents: self.documents.clone(),
            keys: Mutex::default(),
        })
    }
}

/// The pipeline of one operation.
struct Stages {
    coding: Coding,
    limits: Option<Arc<QueryLimits>>,
    documents: Option<Arc<Documents>>,
    keys: Mutex<Keys>,
}

/// The request's keys in the document cache, read when it is prepared.
#[derive(Default, Clone, Copy)]
struct Keys {
    text: Option<Hash>,
    validation: Option<Hash>,
}

impl Stages {
    fn keys(&self) -> Keys {
        *self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Stages {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        // An internal error while the database does not answer is the database's absence
        // (a connection whose session ended may go back to the pool before it is seen
        // closed): the witness is told, and the error pipeline says `UNAVAILABLE`.
        let witness = self.coding.witness();
        if !witness.saw_loss()
            && errors::has_internal(&response)
            && let Ok(db) = ctx.data::<DbPool>()
            && !pool::answers(db).await
        {
            witness.note();
        }
        self.coding.finish(response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.coding.finish_stream(next.run(ctx, stream))
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.coding.prepare(&mut request)?;
        storable::check(&mut request)?;
        let mut keys = Keys::default();
        if let Some(documents) = &self.documents {
            let text = documents::hash(&request.query);
            keys =
                Keys { text: Some(text), validation: documents::validation_key(&text, &request) };
            // A key validated before also passed the limits: they read the same things.
            let known = keys.validation.is_some_and(|key| documents.validated(&key).is_some());
            if !known && let Some(limits) = &self.limits {
                limits.check(ctx, &mut request)?;
            }
        } else if let Some(limits) = &self.limits {
            limits.check(ctx, &mut request)?;
        }
        *self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let result = next.run(ctx, query, variables).await;
        // The cache's copy of the document, rather than a copy of the request's.
        let shared = match (&self.documents, self.keys().text) {
            (Some(documents), Some(text)) if result.is_ok() => {
                documents.get(&text).map(|stored| stored.document.clone())
            }
            _ => None,
        };
        self.coding.parsed(result, shared)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let key = self.keys().validation;
        if let (Some(documents), Some(key)) = (&self.documents, key)
            && let Some(result) = documents.validated(&key)
        {
            return Ok(result);
        }
        match next.run(ctx).await {
            Ok(result) => {
                if let (Some(documents), Some(key)) = (&self.documents, key) {
                    documents.keep_validated(key, result);
                }
                Ok(result)
            }
            Err(errors) => Err(self.coding.refused(errors)),
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let witness = self.coding.executing();
        operation::execute(ctx, operation_name, witness, next).await
    }
}
