//! `casefile serve`: open the database, migrate, bootstrap, listen, and shut down cleanly
//! on SIGINT/SIGTERM, stopping the embedded cluster it started.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::app::AppState;
use crate::config::{DatabaseConfig, ServeConfig, StorageConfig};
use crate::db::{self, Database, migrations};
use crate::signing::AuditKey;
use crate::storage::Storage;
use crate::{bootstrap, http};

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn serve(
    database: &DatabaseConfig,
    storage: &StorageConfig,
    serve: &ServeConfig,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // A malformed CASEFILE_SMTP_URL or CASEFILE_SMTP_FROM stops the start, before anything.
    let mailer = crate::mail::Mailer::from_config(&serve.mail)?;
    let storage = Storage::from_config(storage.object_store_url.as_deref(), &database.data_dir)
        .context("opening the evidence storage")?;
    tracing::info!(location = storage.location(), "evidence storage");
    let db = Database::open(database).await?;
    let result = run(database, serve, &db, storage, mailer, started).await;
    db.close().await;
    tracing::info!("stopped");
    result
}

async fn run(
    config: &DatabaseConfig,
    serve: &ServeConfig,
    db: &Database,
    storage: Storage,
    mailer: Option<crate::mail::Mailer>,
    started: Instant,
) -> anyhow::Result<()> {
    let applied = migrations::run(&db.url).await.context("applying database migrations")?;
    tracing::info!(applied, embedded = db.is_embedded(), "database ready");

    let mut conn = db::pool::connect(&db.url).await.context("connecting to the database")?;
    let token = bootstrap::run(&mut conn).await.context("creating the first tenant and admin")?;
    drop(conn);

    let pool =
        db::pool::build(&db.url, config.pool_size, config.pool_wait(), config.statement_timeout())?;
    let key = AuditKey::load(serve.audit_signing_key_file.as_deref(), &config.data_dir)?;
    let state = AppState::with_key(
        pool.clone(),
        serve.limits.clone(),
        serve.files.clone(),
        config.data_dir.clone(),
        storage.clone(),
        key,
    )
    .with_webhooks(serve.webhooks.clone())
    .with_abuse_limits(&serve.abuse);
    state.events.listen(db.url.clone());
    let jobs_metrics = state.metrics.jobs.clone();
    let events = state.events.clone();
    let app = http::router(state, Duration::from_secs(serve.request_timeout_secs));
    let listener = tokio::net::TcpListener::bind(serve.listen).await.with_context(|| {
        format!("listening on {} (set CASEFILE_LISTEN to another address)", serve.listen)
    })?;
    let address = listener.local_addr()?;
    let listener = http::stall::listener(listener, serve.files.idle_timeout());

    println!("casefile is ready: GraphiQL at http://{address}/");
    match token {
        Some(token) => {
            println!("first start: created tenant `Default` and admin `admin@localhost`");
            println!("admin API token (shown once): {token}");
            match bootstrap::write_token(&config.data_dir, &token) {
                Ok(path) => println!("the token is also in {}", path.display()),
                Err(error) => tracing::error!(%error, "could not write the admin token file"),
            }
        }
        None => {
            let path = bootstrap::token_path(&config.data_dir);
            if path.exists() {
                println!("the first admin token is in {}", path.display());
            }
        }
    }
    tracing::info!(%address, ready_ms = started.elapsed().as_millis() as u64, "listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = crate::jobs::spawn(
        pool.clone(),
        storage,
        Duration::from_secs(serve.jobs_interval_secs),
        jobs_metrics,
        stop_rx.clone(),
    );
    // The delivery worker: webhooks and mail read the change record through it.
    let mut handlers: Vec<std::sync::Arc<dyn crate::delivery::Handler>> =
        vec![crate::delivery::webhooks::WebhookHandler::new(pool.clone(), serve.webhooks.clone())];
    let mail = crate::mail::channel::start(&pool, mailer, Default::default(), stop_rx.clone())
        .await
        .context("setting up the mail channel")?;
    if let Some(mail) = mail {
        handlers.push(mail);
    }
    let delivery = crate::delivery::spawn(
        pool.clone(),
        events.wakeups(),
        handlers,
        crate::delivery::Config::default(),
        stop_rx.clone(),
    );
    let server =
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                let _ = stop_tx.send(true);
            });
    let mut stop_rx_grace = stop_rx.clone();
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = async move {
            let _ = stop_rx_grace.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open after the grace period: closing them"),
    }
    if let Some(jobs) = jobs {
        jobs.abort();
    }
    if let Some(delivery) = delivery {
        // It saw the stop signal: it finishes the events in flight and gives up its leases.
        let _ = delivery.await;
    }
    pool.close();
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
