//! The dashboard's statistics: the open cases (an index-only scan of the partial
//! open-case index `cases_open_stats_idx`) and the per-UTC-day aggregates that the
//! database keeps in the transaction of every write (migration 000011:
//! `case_created_days`, `case_resolved_days`, `detection_days` and `detection_months`,
//! maintained by triggers).
//! Each function is one statement whose cost depends on the days read, not on the number
//! of cases or detections.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, SmallInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::case_created_days;
use crate::models::ids::TenantId;

/// How many names the top lists hold.
pub const TOP: i64 = 10;

/// Open cases with one status rank (0–3), severity rank (0 none, 1–5) and kind.
#[derive(Debug, Clone, QueryableByName)]
pub struct OpenGroup {
    #[diesel(sql_type = SmallInt)]
    pub status_rank: i16,
    #[diesel(sql_type = SmallInt)]
    pub severity: i16,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub cases: i64,
}

/// The tenant's open cases (status rank below 4, the case list's default filter),
/// grouped by status, severity and kind.
pub async fn open_groups(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> QueryResult<Vec<OpenGroup>> {
    // `status_rank < 4` as a literal: the predicate of the partial index.
    diesel::sql_query(
        "SELECT status_rank, severity, kind, count(*) AS cases \
         FROM cases WHERE tenant_id = $1 AND status_rank < 4 \
         GROUP BY status_rank, severity, kind",
    )
    .bind::<SqlUuid, _>(tenant.0)
    .load(conn)
    .await
}

/// Cases created on one UTC day, and those of them that got an assignee.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = case_created_days)]
pub struct CreatedDay {
    pub day: NaiveDate,
    pub created: i32,
    pub assigned: i32,
    /// The sum of their times from creation to first assignment, in milliseconds.
    pub assign_ms: i64,
}

/// The tenant's days from `from` to `to` (inclusive) on which cases were created.
pub async fn created_days(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<CreatedDay>> {
    case_created_days::table
        .filter(case_created_days::tenant_id.eq(tenant.0))
        .filter(case_created_days::day.between(from, to))
        .select(CreatedDay::as_select())
        .load(conn)
        .await
}

/// Resolved cases: per day (with `day`) or per severity and resolution (without).
#[derive(Debug, Clone, QueryableByName)]
pub struct ResolvedGroup {
    #[diesel(sql_type = Nullable<Date>)]
    pub day: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub severity: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resolution: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub resolved: i64,
    /// The sum of their times from creation to resolution, in milliseconds.
    #[diesel(sql_type = BigInt)]
    pub resolve_ms: i64,
}

/// Cases resolved per day from `from` to `to`, then per severity and resolution from
/// `window_from` to `to` (all days inclusive).
pub async fn resolved_groups(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    from: NaiveDate,
    window_from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<ResolvedGroup>> {
    diesel::sql_query(
        "SELECT day, NULL::smallint AS severity, NULL::text AS resolution, \
                sum(resolved)::bigint AS resolved, sum(resolve_ms)::bigint AS resolve_ms \
         FROM case_resolved_days WHERE tenant_id = $1 AND day BETWEEN $2 AND $4 \
         GROUP BY day \
         UNION ALL \
         SELECT NULL, severity, resolution, sum(resolved)::bigint, sum(resolve_ms)::bigint \
         FROM case_resolved_days WHERE tenant_id = $1 AND day BETWEEN $3 AND $4 \
         GROUP BY severity, resolution",
    )
    .bind::<SqlUuid, _>(tenant.0)
    .bind::<Date, _>(from)
    .bind::<Date, _>(window_from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}

/// One of the top names: `RULE` or `DEVICE`, its name and its detections.
#[derive(Debug, Clone, QueryableByName)]
pub struct TopName {
    #[diesel(sql_type = Text)]
    pub dimension: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub detections: i64,
}

/// The [`TOP`] rules and devices with the most detections ingested in a window, most
/// first, ties by name (byte order); devices first. The window is read in three parts:
/// the days from `first` before `months.0`, the whole months from `months.0` up to
/// `months.1` (exclusive; each a first day of a month), and the days from `months.1` to
/// `last`. A year reads about twelve months and sixty days per name, not 365 days.
pub async fn top_names(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    first: NaiveDate,
    months: (NaiveDate, NaiveDate),
    last: NaiveDate,
) -> QueryResult<Vec<TopName>> {
    diesel::sql_query(
        "SELECT dimension, name, detections FROM ( \
             SELECT dimension, name, sum(detections)::bigint AS detections, \
                    row_number() OVER (PARTITION BY dimension \
                                       ORDER BY sum(detections) DESC, name) AS place \
             FROM ( \
                 SELECT dimension, name, detections FROM detection_days \
                 WHERE tenant_id = $1 AND dimension IN ('RULE', 'DEVICE') \
                   AND day >= $2 AND day < $3 \
                 UNION ALL \
                 SELECT dimension, name, detections FROM detection_months \
                 WHERE tenant_id = $1 AND dimension IN ('RULE', 'DEVICE') \
                   AND month >= $3 AND month < $4 \
                 UNION ALL \
                 SELECT dimension, name, detections FROM detection_days \
                 WHERE tenant_id = $1 AND dimension IN ('RULE', 'DEVICE') \
                   AND day >= $4 AND day <= $5 \
             ) parts \
             GROUP BY dimension, name \
             HAVING sum(detections) > 0 \
         ) ranked \
         WHERE place <= $6 \
         ORDER BY dimension, place",
    )
    .bind::<SqlUuid, _>(tenant.0)
    .bind::<Date, _>(first)
    .bind::<Date, _>(months.0)
    .bind::<Date, _>(months.1)
    .bind::<Date, _>(last)
    .bind::<BigInt, _>(TOP)
    .load(conn)
    .await
}
