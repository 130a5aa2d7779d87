//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers and
//! has every migration this binary embeds).

use crate::app::AppState;
use crate::db::{migrations, pool};
use crate::models::database;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn healthz() -> &'static str {
    "ok\n"
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
    let version = database::schema_version(&mut conn)
        .await
        .map_err(|_| "migrations have not run".to_owned())?;
    let expected = migrations::latest_version();
    if version < expected {
        return Err(format!("database schema is at {version:?}, this binary needs {expected:?}"));
    }
    Ok(())
}
