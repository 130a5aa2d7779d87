// TEMPORARY STUB: replaced by the GraphiQL module being written.
pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
}
