//! Detection lists (the tenant's, a case's, a subject's recent activity) with keyset
//! pagination, and the per-case aggregates a case page shows, for many cases at once.

use diesel::sql_types::{BigInt, Nullable, SmallInt, Text, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::models::cases::list::{TimeRange, push_range};
use crate::models::enums::{DetectionSource, Severity};
use crate::models::ids::{CaseId, TenantId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

use super::Detection;

/// Which detections a list holds; `None` does not filter.
#[derive(Debug, Clone, Default)]
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
    /// Only the detections this case holds.
    pub case_id: Option<CaseId>,
}

/// The orders of detection lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum DetectionOrderField {
    ObservedAt,
    IngestedAt,
    RiskScore,
    /// The rule's name, ignoring case.
    RuleName,
}

impl DetectionOrderField {
    const fn key_sql(self) -> &'static str {
        match self {
            DetectionOrderField::ObservedAt => "observed_at",
            DetectionOrderField::IngestedAt => "ingested_at",
            DetectionOrderField::RiskScore => "risk_score",
            DetectionOrderField::RuleName => "(lower(rule_name) COLLATE \"C\")",
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, QueryableByName)]
pub struct Listed {
    #[diesel(embed)]
    pub detection: Detection,
    #[diesel(sql_type = Nullable<Text>)]
    sort_text: Option<String>,
}

impl DetectionOrder {
    pub fn cursor(&self, row: &Listed) -> String {
        let d = &row.detection;
        let key = match self.field {
            DetectionOrderField::ObservedAt => Key::Time(d.observed_at),
            DetectionOrderField::IngestedAt => Key::Time(d.ingested_at),
            DetectionOrderField::RiskScore => Key::Int(d.risk_score.into()),
            DetectionOrderField::RuleName => Key::Text(row.sort_text.clone().unwrap_or_default()),
        };
        Cursor { order: self.tag(), key, tie: Tie::Id(d.id.0) }.encode()
    }

    pub fn decode_cursor(&self, text: &str) -> Option<Cursor> {
        Cursor::decode(text, &self.tag(), self.field.key_type(), false)
    }

    fn tag(&self) -> String {
        format!("detection:{}:{}", self.field.tag(), self.direction.sql())
    }
}

fn push_filter(sql: &mut Sql, tenant: TenantId, filter: &DetectionFilter) {
    sql.push(" WHERE tenant_id = ").bind(Bind::Uuid(tenant.0));
    if let Some(sources) = &filter.sources {
        let values = sources.iter().map(|s| s.as_str().to_owned()).collect();
        sql.push(" AND source = ANY(").bind(Bind::Texts(values)).push(")");
    }
    if let Some(min) = filter.min_severity {
        sql.push(" AND severity >= ").bind(Bind::Int(min.rank().into()));
    }
    push_range(sql, "observed_at", filter.observed_at);
    if let Some(actor) = &filter.actor {
        sql.push(" AND lower(actor) = ").bind(Bind::Text(actor.trim().to_lowercase()));
    }
    if let Some(host) = &filter.device_hostname {
        sql.push(" AND lower(device_hostname) = ").bind(Bind::Text(host.trim().to_lowercase()));
    }
    if let Some(rule) = &filter.rule_name {
        sql.push(" AND lower(rule_name) = ").bind(Bind::Text(rule.trim().to_lowercase()));
    }
    if let Some(sha256) = &filter.sha256 {
        sql.push(" AND file_sha256 = ").bind(Bind::Text(sha256.trim().to_lowercase()));
    }
    match filter.in_case {
        Some(true) => {
            sql.push(" AND EXISTS (SELECT 1 FROM case_detections cd WHERE cd.detection_id = detections.id)");
        }
        Some(false) => {
            sql.push(
                " AND NOT EXISTS (SELECT 1 FROM case_detections cd WHERE cd.detection_id = detections.id)",
            );
        }
        None => {}
    }
    if let Some(case) = filter.case_id {
        sql.push(" AND EXISTS (SELECT 1 FROM case_detections cd WHERE cd.detection_id = detections.id AND cd.case_id = ")
            .bind(Bind::Uuid(case.0))
            .push(")");
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
        "SELECT detections.*, {} AS sort_text FROM detections",
        if order.field == DetectionOrderField::RuleName { key } else { "NULL::text" }
    ));
    push_filter(&mut sql, tenant, filter);
    page::push_keyset(&mut sql, key, "id", order.direction, request);
    let rows: Vec<Listed> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

/// How many of the tenant's detections match `filter`.
pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &DetectionFilter,
) -> QueryResult<i64> {
    let mut sql = Sql::new("SELECT count(*) AS count FROM detections");
    push_filter(&mut sql, tenant, filter);
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
    sql.into_query().load(conn).await
}

/// Detections of an actor counted by severity rank.
#[derive(Debug, Clone, QueryableByName)]
pub struct ActorSeverityCount {
    /// The actor, lower case.
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = SmallInt)]
    pub severity: i16,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The detections of each of these actors (lower case) observed since `since`, counted
/// by severity, in one statement.
pub async fn actor_severity_counts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    actors: &[String],
    since: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Vec<ActorSeverityCount>> {
    let mut sql = Sql::new(
        "SELECT lower(actor) AS actor, severity, count(*) AS count FROM detections WHERE tenant_id = ",
    );
    sql.bind(Bind::Uuid(tenant.0)).push(" AND lower(actor) = ANY(");
    sql.bind(Bind::Texts(actors.to_vec())).push(") AND observed_at >= ");
    sql.bind(Bind::Time(since)).push(" GROUP BY lower(actor), severity");
    sql.into_query().load(conn).await
}
