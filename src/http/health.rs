//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers and
//! has every migration this binary embeds).

use axum::extract::State;
use axum::http::StatusCode;
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;

use crate::app::AppState;
use crate::db::{migrations, pool};

pub async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match check(&state).await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n"))
        }
    }
}

async fn check(state: &AppState) -> Result<(), String> {
    let mut conn = pool::get(&state.db).await.map_err(|_| "database unreachable".to_owned())?;
    let row: Version =
        diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
            .get_result(&mut conn)
            .await
            .map_err(|_| "migrations have not run".to_owned())?;
    let expected = migrations::latest_version();
    if row.version < expected {
        return Err(format!(
            "database schema is at {:?}, this binary needs {:?}",
            row.version, expected
        ));
    }
    Ok(())
}
