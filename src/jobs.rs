//! Retention jobs: delete self-managed cases past `deleteAt`, archive cases past
//! `archiveAt`, and sweep the stored contents whose removal is still owed.
//!
//! Every server runs them every `CASEFILE_JOBS_INTERVAL_SECS`; `casefile jobs run
//! [--now <RFC3339>]` runs them once. Each case is taken with `FOR UPDATE SKIP LOCKED`
//! in a transaction of its own, so with several servers each due case is processed
//! exactly once, and a crash leaves no half-archived case. The work itself is the by-hand
//! archive and delete ([`crate::domain::retention`]); held cases are never taken. The
//! objects of released contents are removed after each commit; a removal that fails stays
//! queued and the sweeper retries it. The clock is a parameter (`now`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::db::{DbPool, pool};
use crate::domain::evidence::{Swept, remove_claimed};
use crate::domain::retention::{self, Released};
use crate::error::AppResult;
use crate::models::cases::{self, Case};
use crate::models::events::Origin;
use crate::models::evidence;
use crate::models::ids::CaseId;
use crate::storage::Storage;

/// Removals the sweeper takes in one transaction.
const SWEEP_BATCH: i64 = 100;

/// The jobs' Prometheus metrics (`casefile_jobs_*`).
#[derive(Clone)]
pub struct JobMetrics {
    archived: Counter,
    deleted: Counter,
    purged: Counter,
    failures: Counter,
    duration: Histogram,
}

impl Default for JobMetrics {
    /// Metrics registered nowhere (the command line's one run).
    fn default() -> Self {
        JobMetrics {
            archived: Counter::default(),
            deleted: Counter::default(),
            purged: Counter::default(),
            failures: Counter::default(),
            duration: Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0]),
        }
    }
}

impl JobMetrics {
    /// New metrics, registered in `registry` (its prefix is `casefile`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = JobMetrics::default();
        registry.register(
            "jobs_cases_archived",
            "Cases archived by the retention job",
            metrics.archived.clone(),
        );
        registry.register(
            "jobs_cases_deleted",
            "Cases deleted by the retention job",
            metrics.deleted.clone(),
        );
        registry.register(
            "jobs_objects_purged",
            "Stored contents removed from the object store by the jobs",
            metrics.purged.clone(),
        );
        registry.register(
            "jobs_failures",
            "Job steps that failed (a case, a removal): retried on the next run",
            metrics.failures.clone(),
        );
        registry.register(
            "jobs_duration_seconds",
            "How long one run of the jobs took",
            metrics.duration.clone(),
        );
        metrics
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    pub archived: u64,
    pub deleted: u64,
    pub objects_purged: u64,
    pub failures: u64,
}

/// Runs the jobs once, as of `now`: deletes, then archives, then the sweeper.
pub async fn run_once(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    now: DateTime<Utc>,
    metrics: &JobMetrics,
) -> JobReport {
    let started = Instant::now();
    let mut report = JobReport::default();
    for step in [Step::Delete, Step::Archive] {
        let mut failed: Vec<CaseId> = Vec::new();
        loop {
            let mut taken: Option<CaseId> = None;
            let result = conn
                .transaction(async |conn| {
                    let case = match step {
                        Step::Delete => cases::lock_next_due_for_delete(conn, now, &failed).await?,
                        Step::Archive => {
                            cases::lock_next_due_for_archive(conn, now, &failed).await?
                        }
                    };
                    let Some(case) = case else { return AppResult::Ok(None) };
                    taken = Some(case.id);
                    step.run(conn, &case, now).await.map(Some)
                })
                .await;
            match result {
                Ok(None) => break,
                Ok(Some(released)) => {
                    match step {
                        Step::Delete => report.deleted += 1,
                        Step::Archive => report.archived += 1,
                    }
                    report.objects_purged +=
                        retention::remove_after_commit(conn, storage, released, now).await;
                }
                Err(error) => {
                    report.failures += 1;
                    tracing::error!(%error, case = ?taken, job = ?step, "retention job failed on a case: retried on the next run");
                    match taken {
                        Some(id) => failed.push(id),
                        // Not even a case could be taken (the database): stop this step.
                        None => break,
                    }
                }
            }
        }
    }
    match sweep(conn, storage, now).await {
        Ok((removed, failures)) => {
            report.objects_purged += removed;
            report.failures += failures;
        }
        Err(error) => {
            report.failures += 1;
            tracing::error!(%error, "the sweeper failed: retried on the next run");
        }
    }
    metrics.archived.inc_by(report.archived);
    metrics.deleted.inc_by(report.deleted);
    metrics.purged.inc_by(report.objects_purged);
    metrics.failures.inc_by(report.failures);
    metrics.duration.observe(started.elapsed().as_secs_f64());
    if report != JobReport::default() {
        tracing::info!(?report, "retention jobs ran");
    }
    report
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Delete,
    Archive,
}

impl Step {
    async fn run(
        self,
        conn: &mut AsyncPgConnection,
        case: &Case,
        now: DateTime<Utc>,
    ) -> AppResult<Released> {
        let origin = Origin::system();
        match self {
            Step::Delete => {
                retention::delete_locked(
                    conn,
                    case.tenant_id,
                    std::slice::from_ref(case),
                    &origin,
                    now,
                )
                .await
            }
            Step::Archive => {
                retention::archive_locked(conn, case, None, &origin, now).await.map(|(_, r)| r)
            }
        }
    }
}

/// Retries the removals that are due, in batches; returns (removed, failed).
async fn sweep(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    now: DateTime<Utc>,
) -> AppResult<(u64, u64)> {
    let (mut removed, mut failed) = (0, 0);
    loop {
        let swept: Vec<Swept> = conn
            .transaction(async |conn| {
                let due = evidence::claim_due_removals(conn, now, SWEEP_BATCH).await?;
                let mut out = Vec::with_capacity(due.len());
                for removal in &due {
                    out.push(remove_claimed(conn, storage, removal, now).await?);
                }
                AppResult::Ok(out)
            })
            .await?;
        removed += swept.iter().filter(|s| **s == Swept::Removed).count() as u64;
        failed += swept.iter().filter(|s| **s == Swept::Failed).count() as u64;
        // A failed removal is postponed, so the next batch never takes it again now.
        if (swept.len() as i64) < SWEEP_BATCH {
            return Ok((removed, failed));
        }
    }
}

/// Runs the jobs every `interval` until `stop` turns true (0: never).
pub fn spawn(
    db: DbPool,
    storage: Storage,
    interval: Duration,
    metrics: JobMetrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            match pool::get(&db).await {
                Ok(mut conn) => {
                    run_once(&mut conn, &storage, Utc::now(), &metrics).await;
                }
                Err(error) => {
                    metrics.failures.inc();
                    tracing::warn!(%error, "retention jobs: no database connection, retried next time");
                }
            }
        }
    }))
}
