//! `caseStats`: the counts a dashboard draws, for any reader of the tenant, read in one
//! read-only snapshot from the open-case index and the per-day aggregates
//! (`models::stats`): a fixed number of statements whatever the tenant's size.
//!
//! A window is a number of whole UTC days ending with today (today included, as far as
//! it has gone); the previous window is as many days just before it.

use std::collections::HashMap;

use anyhow::anyhow;
use chrono::{Datelike, Days, Months, NaiveDate};
use diesel_async::AsyncPgConnection;

use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::stats::{self, CreatedDay, OpenGroup, ResolvedGroup, TopName};

/// The period the statistics cover: whole UTC days ending with today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "StatsWindow")]
pub enum Window {
    /// The last 7 UTC days, today included.
    #[graphql(name = "P7D")]
    P7D,
    /// The last 30 UTC days, today included.
    #[graphql(name = "P30D")]
    P30D,
    /// The last 90 UTC days, today included.
    #[graphql(name = "P90D")]
    P90D,
    /// The last 365 UTC days, today included.
    #[graphql(name = "P365D")]
    P365D,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::P7D, Window::P30D, Window::P90D, Window::P365D];

    /// How many days the window holds.
    pub const fn days(self) -> u64 {
        match self {
            Window::P7D => 7,
            Window::P30D => 30,
            Window::P90D => 90,
            Window::P365D => 365,
        }
    }

    /// The window's first day, when it ends with `today`.
    pub fn first_day(self, today: NaiveDate) -> NaiveDate {
        today - Days::new(self.days() - 1)
    }
}

/// The whole calendar months within `first..=last`: from the first day of the first one
/// to the first day after the last one; an empty range (both `last`'s next day) when none.
pub fn whole_months(first: NaiveDate, last: NaiveDate) -> (NaiveDate, NaiveDate) {
    let month_start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let next_month = |d: NaiveDate| month_start(d) + Months::new(1);
    let from = if first.day() == 1 { first } else { next_month(first) };
    let after = last + Days::new(1);
    let to = if after.day() == 1 { after } else { month_start(last) };
    if from < to { (from, to) } else { (after, after) }
}

/// A mean duration: its count and its sum in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    count: i64,
    ms: i64,
}

impl Mean {
    fn add(&mut self, count: i64, ms: i64) {
        self.count += count;
        self.ms += ms;
    }

    fn seconds(self) -> Option<f64> {
        (self.count > 0).then(|| self.ms as f64 / 1000.0 / self.count as f64)
    }
}

/// What `caseStats` answers (see the schema for each field's meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseStats {
    pub window: Window,
    pub open_by_status: Vec<(CaseStatus, i64)>,
    pub open_by_severity: Vec<(Option<Severity>, i64)>,
    pub open_by_kind: Vec<(CaseKind, i64)>,
    pub resolved_by_resolution: Vec<(Resolution, i64)>,
    pub created_per_day: Vec<(NaiveDate, i64)>,
    pub resolved_per_day: Vec<(NaiveDate, i64)>,
    pub created: i64,
    pub previous_created: i64,
    pub resolved: i64,
    pub previous_resolved: i64,
    pub mean_time_to_assign_seconds: Option<f64>,
    pub mean_time_to_resolve_seconds: Option<f64>,
    pub mean_time_to_resolve_by_severity: Vec<(Option<Severity>, Option<f64>)>,
    pub top_rules: Vec<(String, i64)>,
    pub top_devices: Vec<(String, i64)>,
}

/// The tenant's statistics for `window` ending with the UTC day `today`. Every role that
/// reads (not INGEST).
pub async fn case_stats(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    window: Window,
    today: NaiveDate,
) -> AppResult<CaseStats> {
    viewer.require_read()?;
    let tenant = viewer.tenant_id;
    let first = window.first_day(today);
    let previous_first = first - Days::new(window.days());
    // One snapshot: the parts agree with each other even while cases change.
    let (open, created, resolved, top) = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let open = stats::open_groups(conn, tenant).await?;
            let created = stats::created_days(conn, tenant, previous_first, today).await?;
            let resolved =
                stats::resolved_groups(conn, tenant, previous_first, first, today).await?;
            let top =
                stats::top_names(conn, tenant, first, whole_months(first, today), today).await?;
            Ok::<_, diesel::result::Error>((open, created, resolved, top))
        })
        .await?;
    let mut out = CaseStats {
        window,
        open_by_status: Vec::new(),
        open_by_severity: Vec::new(),
        open_by_kind: Vec::new(),
        resolved_by_resolution: Vec::new(),
        created_per_day: Vec::new(),
        resolved_per_day: Vec::new(),
        created: 0,
        previous_created: 0,
        resolved: 0,
        previous_resolved: 0,
        mean_time_to_assign_seconds: None,
        mean_time_to_resolve_seconds: None,
        mean_time_to_resolve_by_severity: Vec::new(),
        top_rules: Vec::new(),
        top_devices: Vec::new(),
    };
    fill_open(&mut out, &open)?;
    fill_created(&mut out, &created, first, today);
    fill_resolved(&mut out, &resolved, first, today)?;
    fill_top(&mut out, top)?;
    Ok(out)
}

fn stored(what: &str, value: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow!("unknown stored {what} {value} in the statistics"))
}

fn severity(rank: i16) -> AppResult<Option<Severity>> {
    match rank {
        0 => Ok(None),
        rank => Severity::from_rank(rank).map(Some).ok_or_else(|| stored("severity", rank)),
    }
}

/// Every open status, severity (none first) and kind, zeros included, in the enums' order.
fn fill_open(out: &mut CaseStats, groups: &[OpenGroup]) -> AppResult<()> {
    let mut by_status = [0_i64; 4];
    let mut by_severity = [0_i64; 6];
    let mut by_kind = vec![0_i64; CaseKind::ALL.len()];
    for group in groups {
        let status = usize::try_from(group.status_rank)
            .ok()
            .filter(|rank| *rank < by_status.len())
            .ok_or_else(|| stored("open status rank", group.status_rank))?;
        severity(group.severity)?;
        let kind = CaseKind::parse(&group.kind).ok_or_else(|| stored("kind", &group.kind))?;
        let kind = CaseKind::ALL.iter().position(|k| *k == kind).unwrap_or_default();
        by_status[status] += group.cases;
        by_severity[group.severity as usize] += group.cases;
        by_kind[kind] += group.cases;
    }
    out.open_by_status = CaseStatus::OPEN.iter().copied().zip(by_status).collect();
    out.open_by_severity = std::iter::once(None)
        .chain(Severity::ALL.iter().copied().map(Some))
        .zip(by_severity)
        .collect();
    out.open_by_kind = CaseKind::ALL.iter().copied().zip(by_kind).collect();
    Ok(())
}

/// Every day from `first` to `today`, oldest first, with its count (zero for none).
fn per_day(
    counts: &HashMap<NaiveDate, i64>,
    first: NaiveDate,
    today: NaiveDate,
) -> Vec<(NaiveDate, i64)> {
    first
        .iter_days()
        .take_while(|day| *day <= today)
        .map(|day| (day, counts.get(&day).copied().unwrap_or(0)))
        .collect()
}

fn fill_created(out: &mut CaseStats, days: &[CreatedDay], first: NaiveDate, today: NaiveDate) {
    let mut counts = HashMap::new();
    let mut assign = Mean::default();
    for day in days {
        if day.day >= first {
            out.created += i64::from(day.created);
            assign.add(day.assigned.into(), day.assign_ms);
            counts.insert(day.day, i64::from(day.created));
        } else {
            out.previous_created += i64::from(day.created);
        }
    }
    out.created_per_day = per_day(&counts, first, today);
    out.mean_time_to_assign_seconds = assign.seconds();
}

fn fill_resolved(
    out: &mut CaseStats,
    groups: &[ResolvedGroup],
    first: NaiveDate,
    today: NaiveDate,
) -> AppResult<()> {
    let mut counts = HashMap::new();
    let mut by_resolution = vec![0_i64; Resolution::ALL.len()];
    let mut by_severity = [Mean::default(); 6];
    let mut all = Mean::default();
    for group in groups {
        match (group.day, group.severity, group.resolution.as_deref()) {
            (Some(day), _, _) if day >= first => {
                out.resolved += group.resolved;
                counts.insert(day, group.resolved);
            }
            (Some(_), _, _) => out.previous_resolved += group.resolved,
            (None, Some(rank), Some(resolution)) => {
                severity(rank)?;
                let resolution = Resolution::parse(resolution)
                    .ok_or_else(|| stored("resolution", resolution))?;
                let place =
                    Resolution::ALL.iter().position(|r| *r == resolution).unwrap_or_default();
                by_resolution[place] += group.resolved;
                by_severity[rank as usize].add(group.resolved, group.resolve_ms);
                all.add(group.resolved, group.resolve_ms);
            }
            _ => return Err(stored("resolved group", format!("{group:?}"))),
        }
    }
    out.resolved_per_day = per_day(&counts, first, today);
    out.resolved_by_resolution = Resolution::ALL.iter().copied().zip(by_resolution).collect();
    out.mean_time_to_resolve_seconds = all.seconds();
    out.mean_time_to_resolve_by_severity = std::iter::once(None)
        .chain(Severity::ALL.iter().copied().map(Some))
        .zip(by_severity.map(Mean::seconds))
        .collect();
    Ok(())
}

fn fill_top(out: &mut CaseStats, top: Vec<TopName>) -> AppResult<()> {
    for name in top {
        match name.dimension.as_str() {
            "RULE" => out.top_rules.push((name.name, name.detections)),
            "DEVICE" => out.top_devices.push((name.name, name.detections)),
            other => return Err(stored("dimension", other)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn whole_months_are_those_the_window_holds_entirely() {
        let months = |a, b| whole_months(day(a), day(b));
        assert_eq!(months("2025-12-01", "2026-11-30"), (day("2025-12-01"), day("2026-12-01")));
        assert_eq!(months("2025-12-02", "2026-11-29"), (day("2026-01-01"), day("2026-11-01")));
        assert_eq!(months("2026-02-01", "2026-02-28"), (day("2026-02-01"), day("2026-03-01")));
        // None: the days alone, and the month range empty after the window.
        assert_eq!(months("2026-11-24", "2026-11-30"), (day("2026-12-01"), day("2026-12-01")));
        assert_eq!(months("2026-11-02", "2026-12-30"), (day("2026-12-31"), day("2026-12-31")));
    }

    #[test]
    fn a_window_ends_today_and_holds_its_number_of_days() {
        for window in Window::ALL {
            let first = window.first_day(day("2026-03-01"));
            let days = first.iter_days().take_while(|d| *d <= day("2026-03-01")).count();
            assert_eq!(days as u64, window.days());
        }
        assert_eq!(Window::P7D.first_day(day("2026-03-01")), day("2026-02-23"));
    }
}
