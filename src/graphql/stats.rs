//! Dashboard statistics: `caseStats(window:)` and its types.

use async_graphql::{Context, Object, SimpleObject};
use chrono::Utc;

use crate::domain::stats::{self as domain, Window};
use crate::graphql::scalars::Date;
use crate::graphql::viewer_and_loaders;
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};

/// A count as GraphQL's `Int` (saturating; no tenant comes near 2^31 cases).
fn int(count: i64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// Open cases in one status.
#[derive(SimpleObject)]
pub struct StatusCount {
    /// An open status.
    pub status: CaseStatus,
    /// The open cases in it.
    pub count: i32,
}

/// Open cases of one severity.
#[derive(SimpleObject)]
pub struct SeverityCount {
    /// The severity; null: cases without one.
    pub severity: Option<Severity>,
    /// The open cases of that severity.
    pub count: i32,
}

/// Open cases of one kind.
#[derive(SimpleObject)]
pub struct KindCount {
    /// The kind.
    pub kind: CaseKind,
    /// The open cases of that kind.
    pub count: i32,
}

/// Cases resolved with one resolution.
#[derive(SimpleObject)]
pub struct ResolutionCount {
    /// The resolution.
    pub resolution: Resolution,
    /// The cases resolved with it within the window.
    pub count: i32,
}

/// A count on one UTC day.
#[derive(SimpleObject)]
pub struct DayCount {
    /// The UTC day.
    pub day: Date,
    /// How many on that day.
    pub count: i32,
}

/// A mean duration for one severity.
#[derive(SimpleObject)]
pub struct SeverityDuration {
    /// The severity (at resolution); null: cases without one.
    pub severity: Option<Severity>,
    /// The mean in seconds; null when no case of that severity was resolved in the window.
    pub seconds: Option<f64>,
}

/// A name and how many detections carry it.
#[derive(SimpleObject)]
pub struct NameCount {
    /// The rule's name, or the device's hostname (its id when it has none).
    pub name: String,
    /// The detections ingested within the window.
    pub count: i32,
}

/// `caseStats`: the domain's statistics as the schema shows them.
pub struct CaseStats(domain::CaseStats);

/// The counts a dashboard draws for one window: whole UTC days ending with today (today
/// included, as far as it has gone). Served from per-day aggregates that every write keeps
/// in its own transaction, so they cost the same at a thousand cases as at a million.
/// Cases and detections deleted later (by hand or by retention) still count where they
/// happened, as in the change record.
#[Object]
impl CaseStats {
    /// The window these counts cover.
    async fn window(&self) -> Window {
        self.0.window
    }

    /// The open cases (NEW, INVESTIGATING, ON_HOLD, ACTION_REQUIRED: the case list's
    /// default filter) by status, now, whatever the window: every open status, zeros
    /// included.
    async fn open_by_status(&self) -> Vec<StatusCount> {
        let rows = &self.0.open_by_status;
        rows.iter().map(|(status, n)| StatusCount { status: *status, count: int(*n) }).collect()
    }

    /// The open cases by severity, now: cases without a severity (null) first, then
    /// INFORMATIONAL to CRITICAL, zeros included.
    async fn open_by_severity(&self) -> Vec<SeverityCount> {
        let rows = &self.0.open_by_severity;
        rows.iter()
            .map(|(severity, n)| SeverityCount { severity: *severity, count: int(*n) })
            .collect()
    }

    /// The open cases by kind, now: every kind, zeros included.
    async fn open_by_kind(&self) -> Vec<KindCount> {
        let rows = &self.0.open_by_kind;
        rows.iter().map(|(kind, n)| KindCount { kind: *kind, count: int(*n) }).collect()
    }

    /// The cases resolved within the window, by resolution: every resolution, zeros
    /// included. (A resolved case that was archived since still counts.)
    async fn resolved_by_resolution(&self) -> Vec<ResolutionCount> {
        let rows = &self.0.resolved_by_resolution;
        rows.iter()
            .map(|(resolution, n)| ResolutionCount { resolution: *resolution, count: int(*n) })
            .collect()
    }

    /// The cases created on each UTC day of the window, oldest first, every day present
    /// (zero when none).
    async fn created_per_day(&self) -> Vec<DayCount> {
        days(&self.0.created_per_day)
    }

    /// The cases resolved on each UTC day of the window, oldest first, every day present
    /// (zero when none).
    async fn resolved_per_day(&self) -> Vec<DayCount> {
        days(&self.0.resolved_per_day)
    }

    /// The cases created within the window.
    async fn created(&self) -> i32 {
        int(self.0.created)
    }

    /// The cases created within the window before it (as many days, just before).
    async fn previous_created(&self) -> i32 {
        int(self.0.previous_created)
    }

    /// The cases resolved within the window.
    async fn resolved(&self) -> i32 {
        int(self.0.resolved)
    }

    /// The cases resolved within the window before it (as many days, just before).
    async fn previous_resolved(&self) -> i32 {
        int(self.0.previous_resolved)
    }

    /// The mean time from creation to first assignment, in seconds, of the cases created
    /// within the window that got an assignee (a case created with one counts zero);
    /// null when none did. Later reassignments do not count.
    async fn mean_time_to_assign_seconds(&self) -> Option<f64> {
        self.0.mean_time_to_assign_seconds
    }

    /// The mean time from creation to resolution, in seconds, of the cases resolved within
    /// the window; null when none was.
    async fn mean_time_to_resolve_seconds(&self) -> Option<f64> {
        self.0.mean_time_to_resolve_seconds
    }

    /// `meanTimeToResolveSeconds` per severity at resolution: cases without a severity
    /// (null) first, then INFORMATIONAL to CRITICAL, every severity present (seconds null
    /// when none of it was resolved within the window).
    async fn mean_time_to_resolve_by_severity(&self) -> Vec<SeverityDuration> {
        let rows = &self.0.mean_time_to_resolve_by_severity;
        rows.iter()
            .map(|(severity, seconds)| SeverityDuration { severity: *severity, seconds: *seconds })
            .collect()
    }

    /// The 10 rules with the most detections ingested within the window, most first,
    /// ties by name (byte order of UTF-8); rules spelled differently count apart.
    async fn top_rules(&self) -> Vec<NameCount> {
        names(&self.0.top_rules)
    }

    /// The 10 devices (by hostname, else device id) with the most detections ingested
    /// within the window, most first, ties by name (byte order of UTF-8). Detections
    /// without a device are left out.
    async fn top_devices(&self) -> Vec<NameCount> {
        names(&self.0.top_devices)
    }
}

fn days(rows: &[(chrono::NaiveDate, i64)]) -> Vec<DayCount> {
    rows.iter().map(|(day, n)| DayCount { day: Date(*day), count: int(*n) }).collect()
}

fn names(rows: &[(String, i64)]) -> Vec<NameCount> {
    rows.iter().map(|(name, n)| NameCount { name: name.clone(), count: int(*n) }).collect()
}

#[derive(Default)]
pub struct StatsQuery;

#[Object]
impl StatsQuery {
    /// Dashboard statistics of the viewer's tenant for a window of whole UTC days ending
    /// today: open cases now, cases created and resolved per day (with the window before
    /// it for comparison), mean times to assign and to resolve, and the top rules and
    /// devices by detections. Every role that reads (not INGEST: `FORBIDDEN`). A fixed
    /// number of statements, whatever the tenant's size.
    async fn case_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The window: the last 7, 30, 90 or 365 UTC days, today included.")]
        window: Window,
    ) -> async_graphql::Result<CaseStats> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let today = Utc::now().date_naive();
        let mut conn = crate::graphql::conn(ctx).await?;
        Ok(CaseStats(domain::case_stats(&mut conn, viewer, window, today).await?))
    }
}
