//! Detection lists (the tenant's, a case's, a subject's recent activity) with keyset
//! pagination, and the per-case aggregates a case page shows, for many cases at once.

use std::sync::LazyLock;

use diesel::deserialize::{self, FromSqlRow, QueryableByName, StaticallySizedRow};
use diesel::dsl::SqlTypeOf;
use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{QueryBuilder, QueryFragment};
use diesel::row::{NamedRow, Row};
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text, Uuid as SqlUuid};
use diesel::{QueryResult, Selectable, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::models::cases::list::{TimeRange, push_range};
use crate::models::enums::{DetectionSource, Severity};
use crate::models::fold::fold;
use crate::models::ids::{CaseId, TenantId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

use super::Detection;

/// Which detections a list holds; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DetectionFilter {
    pub sources: Option<Vec<DetectionSource>>,
    pub min_severity: Option<Severity>,
    pub observed_at: TimeRange,
    /// The actor's username, ignoring case.
    pub actor: Option<String>,
    /// The device's hostname, ignoring case.
    pub device_hostname: Option<String>,
    /// The rule's name, ignoring case.
    pub rule_name: Option<String>,
    pub sha256: Option<String>,
    /// Held by some case (true) or by none (false).
    pub in_case: Option<bool>,
}

/// The orders of detection lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum DetectionOrderField {
    /// When the sensor saw the activity.
    ObservedAt,
    /// When casefile stored the detection.
    IngestedAt,
    /// The risk score (and so the severity).
    RiskScore,
    /// The rule's name, ignoring case.
    RuleName,
}

impl DetectionOrderField {
    const fn key_sql(self) -> &'static str {
        match self {
            DetectionOrderField::ObservedAt => "detections.observed_at",
            DetectionOrderField::IngestedAt => "detections.ingested_at",
            DetectionOrderField::RiskScore => "detections.risk_score",
            DetectionOrderField::RuleName => "detections.rule_name_key",
        }
    }

    /// The same key as the link row carries it (`case_detections`, aliased `cd`): a
    /// case's pages read the link's index for the order and stop after the page.
    const fn link_key_sql(self) -> &'static str {
        match self {
            DetectionOrderField::ObservedAt => "cd.observed_at",
            DetectionOrderField::IngestedAt => "cd.ingested_at",
            DetectionOrderField::RiskScore => "cd.risk_score",
            DetectionOrderField::RuleName => "cd.rule_name_key",
        }
    }

    const fn key_type(self) -> KeyType {
        match self {
            DetectionOrderField::RiskScore => KeyType::Int,
            DetectionOrderField::RuleName => KeyType::Text,
            _ => KeyType::Time,
        }
    }

    const fn tag(self) -> &'static str {
        match self {
            DetectionOrderField::ObservedAt => "OBSERVED_AT",
            DetectionOrderField::IngestedAt => "INGESTED_AT",
            DetectionOrderField::RiskScore => "RISK_SCORE",
            DetectionOrderField::RuleName => "RULE_NAME",
        }
    }
}

/// An order of a detection list; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetectionOrder {
    pub field: DetectionOrderField,
    pub direction: Direction,
}

impl Default for DetectionOrder {
    fn default() -> Self {
        Self { field: DetectionOrderField::ObservedAt, direction: Direction::Desc }
    }
}

/// A row of a list: the detection and its sort key as the database computed it.
///
/// Read by position, not by name ([`QueryableByName`] by hand): the detection's columns
/// as [`detection_columns`] lists them, then `sort_text`. diesel-async finds a column by
/// name with a scan of the row's columns, which for a page of 100 detections of 30
/// columns was a visible share of the server's time.
#[derive(Debug, Clone)]
pub struct Listed {
    pub detection: Detection,
    sort_text: Option<String>,
}

/// The SQL types of the detection's columns, in the order of its `Selectable`.
type DetectionRow = SqlTypeOf<<Detection as Selectable<Pg>>::SelectExpression>;

/// How many columns a detection takes at the start of a list's row.
const DETECTION_COLUMNS: usize = <Detection as StaticallySizedRow<DetectionRow, Pg>>::FIELD_COUNT;

/// The detection's columns, qualified by the table, in the order its `Selectable` (and
/// so the positional decoding of [`Listed`]) reads them: diesel's own select clause,
/// so that the list and the struct cannot drift apart.
pub fn detection_columns() -> &'static str {
    static COLUMNS: LazyLock<String> = LazyLock::new(|| {
        let mut builder = PgQueryBuilder::new();
        Detection::as_select()
            .to_sql(&mut builder, &Pg)
            .expect("a detection's select clause is plain SQL");
        builder.finish()
    });
    &COLUMNS
}

impl Listed {
    /// The list row at the start of `row`; the columns after `sort_text` are the caller's.
    fn from_row<'a>(row: &impl Row<'a, Pg>) -> deserialize::Result<Self> {
        let detection = <Detection as FromSqlRow<DetectionRow, Pg>>::build_from_row(
            &row.partial_row(0..DETECTION_COLUMNS),
        )?;
        let sort_text = row.get_value::<Nullable<Text>, _, _>(DETECTION_COLUMNS)?;
        Ok(Self { detection, sort_text })
    }
}

impl QueryableByName<Pg> for Listed {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        Listed::from_row(row)
    }
}

impl DetectionOrder {
    /// The cursor of `row` in this order (`Cursor::encode` gives its text).
    pub fn cursor(&self, row: &Listed) -> Cursor {
        let d = &row.detection;
        let key = match self.field {
            DetectionOrderField::ObservedAt => Key::Time(d.observed_at),
            DetectionOrderField::IngestedAt => Key::Time(d.ingested_at),
            DetectionOrderField::RiskScore => Key::Int(d.risk_score.into()),
            DetectionOrderField::RuleName => Key::Text(row.sort_text.clone().unwrap_or_default()),
        };
        Cursor { order: self.tag(), key, tie: Tie::Id(d.id.0) }
    }

    pub fn decode_cursor(&self, text: &str) -> Option<Cursor> {
        Cursor::decode(text, &self.tag(), self.field.key_type(), false)
    }

    fn tag(&self) -> String {
        format!("detection:{}:{}", self.field.tag(), self.direction.sql())
    }
}

fn push_filter(sql: &mut Sql, tenant: TenantId, filter: &DetectionFilter) {
    sql.push(" WHERE detections.tenant_id = ").bind(Bind::Uuid(tenant.0));
    if let Some(sources) = &filter.sources {
        let values = sources.iter().map(|s| s.as_str().to_owned()).collect();
        sql.push(" AND detections.source = ANY(").bind(Bind::Texts(values)).push(")");
    }
    if let Some(min) = filter.min_severity {
        sql.push(" AND detections.severity >= ").bind(Bind::Int(min.rank().into()));
    }
    push_range(sql, "detections.observed_at", filter.observed_at);
    if let Some(actor) = &filter.actor {
        sql.push(" AND detections.actor_key = ").bind(Bind::Text(fold(actor.trim())));
    }
    if let Some(host) = &filter.device_hostname {
        sql.push(" AND detections.device_hostname_key = ").bind(Bind::Text(fold(host.trim())));
    }
    if let Some(rule) = &filter.rule_name {
        sql.push(" AND detections.rule_name_key = ").bind(Bind::Text(fold(rule.trim())));
    }
    if let Some(sha256) = &filter.sha256 {
        sql.push(" AND detections.file_sha256 = ")
            .bind(Bind::Text(sha256.trim().to_ascii_lowercase()));
    }
    let held =
        "EXISTS (SELECT 1 FROM case_detections held WHERE held.detection_id = detections.id)";
    match filter.in_case {
        Some(true) => {
            sql.push(&format!(" AND {held}"));
        }
        Some(false) => {
            sql.push(&format!(" AND NOT {held}"));
        }
        None => {}
    }
}

impl DetectionFilter {
    /// Whether nothing narrows the list: only such lists' statements are cached
    /// (`Sql::cache`). A list statement then has 4 orders × 2 directions × with or
    /// without a cursor = 16 shapes per kind of list, a count 1; every filter field would
    /// double them (the time range quadruple them).
    fn is_plain(&self) -> bool {
        *self == DetectionFilter::default()
    }
}

/// One page of the tenant's detections matching `filter`, in `order`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &DetectionFilter,
    order: DetectionOrder,
    request: &PageRequest,
) -> QueryResult<Page<Listed>> {
    let key = order.field.key_sql();
    let mut sql = Sql::new(&format!(
        "SELECT {}, {} AS sort_text FROM detections",
        detection_columns(),
        if order.field == DetectionOrderField::RuleName { key } else { "NULL::text" }
    ));
    push_filter(&mut sql, tenant, filter);
    page::push_keyset(&mut sql, key, "detections.id", order.direction, request);
    sql.cache(filter.is_plain());
    let rows: Vec<Listed> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

/// The parents of nested detection lists: cases (their detections) or actors (a
/// subject's activity, by username key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Parents {
    Cases(Vec<CaseId>),
    Actors(Vec<String>),
}

impl Parents {
    /// The FROM clause, and the parent expression rows are grouped by.
    fn source(&self) -> (&'static str, &'static str) {
        match self {
            Parents::Cases(_) => (
                "detections JOIN case_detections cd ON cd.detection_id = detections.id",
                "cd.case_id",
            ),
            Parents::Actors(_) => ("detections", "detections.actor_key"),
        }
    }

    fn push_condition(&self, sql: &mut Sql, parent: &str) {
        sql.push(&format!(" AND {parent} = ANY("));
        match self {
            Parents::Cases(ids) => sql.bind(Bind::Uuids(ids.iter().map(|c| c.0).collect())),
            Parents::Actors(actors) => sql.bind(Bind::Texts(actors.clone())),
        };
        sql.push(")");
    }
}

/// A row of a nested list: the detection, its sort key, and its parent as text, read by
/// position as [`Listed`] is (the statement's columns after `parent_key` are not read).
#[derive(Debug)]
pub struct Ranked {
    pub listed: Listed,
    parent_key: String,
}

impl QueryableByName<Pg> for Ranked {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let listed = Listed::from_row(row)?;
        let parent_key = row.get_value::<Text, _, _>(DETECTION_COLUMNS + 1)?;
        Ok(Self { listed, parent_key })
    }
}

/// One page per parent of the detections matching `filter`, in one statement. Keys of
/// the map: a case id or an actor, as text.
pub async fn pages_by_parent(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    parents: &Parents,
    filter: &DetectionFilter,
    order: DetectionOrder,
    request: &PageRequest,
) -> QueryResult<std::collections::HashMap<String, Page<Listed>>> {
    let sql = pages_sql(tenant, parents, filter, order, request);
    let rows: Vec<Ranked> = sql.into_query().load(conn).await?;
    let rows = rows.into_iter().map(|r| (r.parent_key, r.listed)).collect();
    Ok(page::pages_by_parent(rows, request))
}

/// The statement of [`pages_by_parent`] (public for the plan tests).
///
/// Cases: for each case, a range scan of the link index of the order (the link carries
/// its detection's sort keys) from the cursor on, joined to the detections and stopped
/// after `limit + 1` rows that pass the filter; never a sort of all the case's links.
/// Actors: the matching detections numbered per actor.
pub fn pages_sql(
    tenant: TenantId,
    parents: &Parents,
    filter: &DetectionFilter,
    order: DetectionOrder,
    request: &PageRequest,
) -> Sql {
    let mut sql = match parents {
        Parents::Cases(ids) => case_pages_sql(tenant, ids, filter, order, request),
        Parents::Actors(_) => {
            let (from, parent) = parents.source();
            let key = order.field.key_sql();
            let mut inner = Sql::new(&format!(" FROM {from}"));
            push_filter(&mut inner, tenant, filter);
            parents.push_condition(&mut inner, parent);
            page::push_after(&mut inner, key, "detections.id", order.direction, request);
            let sort_text =
                if order.field == DetectionOrderField::RuleName { key } else { "NULL::text" };
            let select = format!("{}, {sort_text} AS sort_text", detection_columns());
            page::window(inner, &select, parent, key, "detections.id", order.direction, request)
        }
    };
    sql.cache(filter.is_plain());
    sql
}

fn case_pages_sql(
    tenant: TenantId,
    cases: &[CaseId],
    filter: &DetectionFilter,
    order: DetectionOrder,
    request: &PageRequest,
) -> Sql {
    let key = order.field.link_key_sql();
    let sort_text = if order.field == DetectionOrderField::RuleName { key } else { "NULL::text" };
    let columns = detection_columns();
    let mut sql = Sql::new("SELECT page.* FROM unnest(");
    sql.bind(Bind::Uuids(cases.iter().map(|c| c.0).collect()));
    // The links are read by case alone, with no condition on their tenant column, not even
    // one the planner could derive through the join: the case id comes from `unnest`, so
    // the planner knows only the average case (nine links at the medium seed), and with a
    // tenant condition it took the (tenant_id, case_id) index and sorted all of a large
    // case's links (3,000 links: 22 ms instead of 1 ms at the medium seed, in both custom and
    // generic plans). The tenant is kept by the detections' own condition (`push_filter`),
    // and a link shares its case's and its detection's tenant (both foreign keys carry it).
    sql.push(&format!(
        "::uuid[]) WITH ORDINALITY AS p(case_id, ord) CROSS JOIN LATERAL (\
         SELECT {columns}, {sort_text} AS sort_text, p.case_id::text AS parent_key, \
         p.ord AS parent_ord, {key} AS page_key \
         FROM case_detections cd JOIN detections ON detections.id = cd.detection_id"
    ));
    push_filter(&mut sql, tenant, filter);
    sql.push(" AND cd.case_id = p.case_id");
    page::push_keyset(&mut sql, key, "cd.detection_id", order.direction, request);
    let dir = page::scan_direction(order.direction, request).sql();
    sql.push(&format!(") page ORDER BY page.parent_ord, page.page_key {dir}, page.id {dir}"));
    sql
}

/// A count per parent.
#[derive(Debug, QueryableByName)]
struct ParentCount {
    #[diesel(sql_type = Text)]
    parent_key: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many detections match `filter` per parent, in one statement.
pub async fn counts_by_parent(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    parents: &Parents,
    filter: &DetectionFilter,
) -> QueryResult<std::collections::HashMap<String, i64>> {
    let (from, parent) = parents.source();
    let mut sql =
        Sql::new(&format!("SELECT ({parent})::text AS parent_key, count(*) AS count FROM {from}"));
    push_filter(&mut sql, tenant, filter);
    parents.push_condition(&mut sql, parent);
    sql.push(&format!(" GROUP BY {parent}")).cache(filter.is_plain());
    let rows: Vec<ParentCount> = sql.into_query().load(conn).await?;
    Ok(rows.into_iter().map(|r| (r.parent_key, r.count)).collect())
}

/// How many of the tenant's detections match `filter`.
pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &DetectionFilter,
) -> QueryResult<i64> {
    let mut sql = Sql::new("SELECT count(*) AS count FROM detections");
    push_filter(&mut sql, tenant, filter);
    sql.cache(filter.is_plain());
    let row: Count = sql.into_query().get_result(conn).await?;
    Ok(row.count)
}

/// How often a MITRE technique appears among a case's detections.
#[derive(Debug, Clone, QueryableByName)]
pub struct TechniqueCount {
    #[diesel(sql_type = SqlUuid)]
    pub case_id: CaseId,
    #[diesel(sql_type = Text)]
    pub tactic_id: String,
    #[diesel(sql_type = Text)]
    pub tactic_name: String,
    #[diesel(sql_type = Text)]
    pub technique_id: String,
    #[diesel(sql_type = Text)]
    pub technique_name: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The MITRE techniques of the detections of each of these cases, by tactic and technique.
pub async fn mitre_counts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
) -> QueryResult<Vec<TechniqueCount>> {
    let mut sql = Sql::new(
        "SELECT cd.case_id, m->>'tacticId' AS tactic_id, max(m->>'tacticName') AS tactic_name, \
         m->>'techniqueId' AS technique_id, max(m->>'techniqueName') AS technique_name, \
         count(*) AS count \
         FROM case_detections cd JOIN detections d ON d.id = cd.detection_id \
         CROSS JOIN LATERAL jsonb_array_elements(d.mitre) m \
         WHERE cd.tenant_id = ",
    );
    sql.bind(Bind::Uuid(tenant.0)).push(" AND cd.case_id = ANY(");
    sql.bind(Bind::Uuids(cases.iter().map(|c| c.0).collect()));
    sql.push(
        ") GROUP BY cd.case_id, m->>'tacticId', m->>'techniqueId' \
         ORDER BY cd.case_id, m->>'tacticId', m->>'techniqueId'",
    );
    // One shape.
    sql.cache(true);
    sql.into_query().load(conn).await
}

/// A device, user or IP address seen in a case's detections.
#[derive(Debug, Clone, QueryableByName)]
pub struct EntityCount {
    #[diesel(sql_type = SqlUuid)]
    pub case_id: CaseId,
    /// `DEVICE`, `USER` or `IP_ADDRESS`.
    #[diesel(sql_type = Text)]
    pub entity_type: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = SmallInt)]
    pub highest: i16,
}

/// The devices, users and IP addresses of the detections of each of these cases, most
/// detections first.
pub async fn impacted_entities(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
) -> QueryResult<Vec<EntityCount>> {
    let mut sql = Sql::new(
        "WITH linked AS (SELECT cd.case_id, d.device_hostname, d.actor, d.device_ip, d.severity \
         FROM case_detections cd JOIN detections d ON d.id = cd.detection_id \
         WHERE cd.tenant_id = ",
    );
    sql.bind(Bind::Uuid(tenant.0)).push(" AND cd.case_id = ANY(");
    sql.bind(Bind::Uuids(cases.iter().map(|c| c.0).collect()));
    sql.push(
        ")) SELECT case_id, entity_type, name, count(*) AS count, max(severity) AS highest FROM ( \
         SELECT case_id, 'DEVICE' AS entity_type, device_hostname AS name, severity FROM linked \
         WHERE device_hostname IS NOT NULL \
         UNION ALL SELECT case_id, 'USER', actor, severity FROM linked WHERE actor IS NOT NULL \
         UNION ALL SELECT case_id, 'IP_ADDRESS', device_ip, severity FROM linked \
         WHERE device_ip IS NOT NULL) e \
         GROUP BY case_id, entity_type, name \
         ORDER BY case_id, count(*) DESC, entity_type, name",
    );
    // One shape.
    sql.cache(true);
    sql.into_query().load(conn).await
}

/// Detections of an actor counted by severity rank.
#[derive(Debug, Clone, QueryableByName)]
pub struct ActorSeverityCount {
    /// The actor, folded key.
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = SmallInt)]
    pub severity: i16,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The detections of each of these actors (folded key) observed since `since`, counted
/// by severity, in one statement.
pub async fn actor_severity_counts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    actors: &[String],
    since: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Vec<ActorSeverityCount>> {
    let mut sql = Sql::new(
        "SELECT actor_key AS actor, severity, count(*) AS count FROM detections WHERE tenant_id = ",
    );
    sql.bind(Bind::Uuid(tenant.0)).push(" AND actor_key = ANY(");
    sql.bind(Bind::Texts(actors.to_vec())).push(") AND observed_at >= ");
    // One shape.
    sql.bind(Bind::Time(since)).push(" GROUP BY actor_key, severity").cache(true);
    sql.into_query().load(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selected_columns_are_the_ones_the_positional_decoding_reads_in_its_order() {
        let columns: Vec<&str> = detection_columns().split(", ").collect();
        assert_eq!(columns.len(), DETECTION_COLUMNS);
        assert_eq!(columns[0], r#""detections"."id""#);
        assert_eq!(columns[DETECTION_COLUMNS - 1], r#""detections"."content_sha256""#);
        assert!(columns.iter().all(|c| c.starts_with(r#""detections"."#)), "{columns:?}");
    }
}
