//! Re-keying stored rows with the one folding rule (`models::fold`). Migration
//! `2026-11-30-000003` added the key columns filled with SQL's `lower()`, which equals the
//! fold for ASCII text only (and only under some locales); the migration runner calls
//! [`run`] in that migration's transaction, so no row keeps an approximate key.
//!
//! [`run`] is idempotent and deterministic: it recomputes every key from its value and
//! writes only those that differ. Where two existing rows of a scope (a tenant; all
//! tenants for tenant names) fold to the same unique key — "Ärger" and "ärger", accepted
//! side by side while `lower()` folded ASCII only — the older row (by `created_at`, then
//! id) keeps the fold and each younger one gets [`fold::disambiguated`] (the fold, U+0001
//! and its id): nothing is renamed or merged, every row stays readable and sorts next to
//! its twin, the start does not fail, and new values equal to the fold are refused as
//! taken. Each such row is logged.

use std::collections::HashSet;

use diesel::connection::LoadConnection;
use diesel::pg::Pg;
use diesel::sql_types::{Array, Nullable, Text, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use uuid::Uuid;

use crate::models::fold;

/// A key column and the column it folds.
struct KeyColumn {
    table: &'static str,
    value: &'static str,
    key: &'static str,
    /// The column a unique key is unique within (`None`: not unique).
    unique_within: Option<&'static str>,
}

const KEY_COLUMNS: [KeyColumn; 8] = [
    KeyColumn { table: "tenants", value: "name", key: "name_key", unique_within: Some("NULL") },
    KeyColumn {
        table: "users",
        value: "email",
        key: "email_key",
        unique_within: Some("tenant_id"),
    },
    KeyColumn {
        table: "subjects",
        value: "username",
        key: "username_key",
        unique_within: Some("tenant_id"),
    },
    KeyColumn {
        table: "subjects",
        value: "department",
        key: "department_key",
        unique_within: None,
    },
    KeyColumn { table: "cases", value: "name", key: "name_key", unique_within: Some("tenant_id") },
    KeyColumn {
        table: "detections",
        value: "rule_name",
        key: "rule_name_key",
        unique_within: None,
    },
    KeyColumn {
        table: "detections",
        value: "device_hostname",
        key: "device_hostname_key",
        unique_within: None,
    },
    KeyColumn { table: "detections", value: "actor", key: "actor_key", unique_within: None },
];

/// Rows read per statement when scanning a table whose key is not unique.
const BATCH: i64 = 10_000;

#[derive(Debug, QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    scope: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
}

/// What a run changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// Keys rewritten (sort keys of cases included).
    pub keys: usize,
    /// Rows whose fold an older row of their scope holds: they keep a disambiguated key.
    pub collisions: usize,
}

/// Rewrites every stored key that differs from the fold of its value, then the cases'
/// sort keys (the assignee's display name, the subject's username key).
pub fn run<C>(conn: &mut C) -> QueryResult<Rekeyed>
where
    C: LoadConnection<Backend = Pg>,
{
    let mut done = Rekeyed::default();
    for column in &KEY_COLUMNS {
        match column.unique_within {
            Some(scope) => rekey_unique(conn, column, scope, &mut done)?,
            None => rekey_plain(conn, column, &mut done)?,
        }
    }
    rekey_case_sorts(conn, &mut done)?;
    Ok(done)
}

/// Rewrites the rule keys the links copied from their detections (`links::add`) where a
/// re-key changed them, so a case's detection page by rule stays in the rule key's order.
/// Runs after [`run`] once the links carry the key (migration `2026-11-30-000008`).
pub fn resync_links<C>(conn: &mut C) -> QueryResult<usize>
where
    C: LoadConnection<Backend = Pg>,
{
    diesel::sql_query(
        "UPDATE case_detections cd SET rule_name_key = d.rule_name_key FROM detections d \
         WHERE d.tenant_id = cd.tenant_id AND d.id = cd.detection_id \
         AND cd.rule_name_key IS DISTINCT FROM d.rule_name_key",
    )
    .execute(conn)
}

/// The desired key of each row of a unique key column, oldest row first.
fn rekey_unique<C>(
    conn: &mut C,
    column: &KeyColumn,
    scope: &str,
    done: &mut Rekeyed,
) -> QueryResult<()>
where
    C: LoadConnection<Backend = Pg>,
{
    let KeyColumn { table, value, key, .. } = column;
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT id, {scope}::uuid AS scope, {value} AS value, {key}::text AS key FROM {table} \
         ORDER BY created_at, id"
    ))
    .load(conn)?;
    let mut claimed: HashSet<(Option<Uuid>, String)> = HashSet::with_capacity(rows.len());
    let mut changed: Vec<(Uuid, String)> = Vec::new();
    for row in rows {
        let folded = fold::fold(row.value.as_deref().unwrap_or_default());
        let wanted = if claimed.contains(&(row.scope, folded.clone())) {
            done.collisions += 1;
            tracing::warn!(
                table = *table,
                column = *value,
                id = %row.id,
                "an older row holds this value ignoring case: the row keeps a disambiguated key"
            );
            fold::disambiguated(&folded, row.id)
        } else {
            folded
        };
        claimed.insert((row.scope, wanted.clone()));
        if row.key.as_deref() != Some(wanted.as_str()) {
            changed.push((row.id, wanted));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    // First a temporary key unique by id, so that no intermediate state of the unique
    // index holds one key twice; then the final keys (distinct from every kept key).
    let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
    let temporary: Vec<Option<String>> = ids.iter().map(|id| Some(format!("\u{1}{id}"))).collect();
    set_keys(conn, table, key, &ids, &temporary)?;
    let keys: Vec<Option<String>> = changed.into_iter().map(|(_, k)| Some(k)).collect();
    done.keys += set_keys(conn, table, key, &ids, &keys)?;
    Ok(())
}

/// Rewrites the differing keys of a column that is not unique, a batch at a time.
fn rekey_plain<C>(conn: &mut C, column: &KeyColumn, done: &mut Rekeyed) -> QueryResult<()>
where
    C: LoadConnection<Backend = Pg>,
{
    let KeyColumn { table, value, key, .. } = column;
    let mut after = Uuid::nil();
    loop {
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT id, NULL::uuid AS scope, {value} AS value, {key}::text AS key FROM {table} \
             WHERE id > $1 ORDER BY id LIMIT {BATCH}"
        ))
        .bind::<SqlUuid, _>(after)
        .load(conn)?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.id;
        let full = rows.len() as i64 == BATCH;
        let (ids, keys): (Vec<Uuid>, Vec<Option<String>>) = rows
            .into_iter()
            .filter_map(|row| {
                let wanted = fold::fold_opt(row.value.as_deref());
                (wanted != row.key).then_some((row.id, wanted))
            })
            .unzip();
        if !ids.is_empty() {
            done.keys += set_keys(conn, table, key, &ids, &keys)?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Writes `keys` (NULL for a NULL value) to the rows `ids` of `table`, in one statement.
fn set_keys<C>(
    conn: &mut C,
    table: &str,
    key: &str,
    ids: &[Uuid],
    keys: &[Option<String>],
) -> QueryResult<usize>
where
    C: LoadConnection<Backend = Pg>,
{
    diesel::sql_query(format!(
        "UPDATE {table} t SET {key} = v.key FROM unnest($1::uuid[], $2::text[]) AS v(id, key) \
         WHERE t.id = v.id"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<Nullable<Text>>, _>(keys)
    .execute(conn)
}

#[derive(Debug, QueryableByName)]
struct DisplayName {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    display_name: String,
}

/// The cases' sort keys: the assignee's display name folded, the subject's username key.
fn rekey_case_sorts<C>(conn: &mut C, done: &mut Rekeyed) -> QueryResult<()>
where
    C: LoadConnection<Backend = Pg>,
{
    done.keys += diesel::sql_query(
        "UPDATE cases c SET subject_sort = s.username_key FROM subjects s \
         WHERE s.tenant_id = c.tenant_id AND s.id = c.subject_id \
         AND c.subject_sort <> s.username_key",
    )
    .execute(conn)?;
    let assignees: Vec<DisplayName> = diesel::sql_query(
        "SELECT id, display_name FROM users u \
         WHERE EXISTS (SELECT 1 FROM cases c WHERE c.tenant_id = u.tenant_id AND c.assignee_id = u.id)",
    )
    .load(conn)?;
    let (ids, keys): (Vec<Uuid>, Vec<String>) =
        assignees.into_iter().map(|u| (u.id, fold::fold(&u.display_name))).unzip();
    if !ids.is_empty() {
        done.keys += diesel::sql_query(
            "UPDATE cases c SET assignee_sort = v.key FROM unnest($1::uuid[], $2::text[]) \
             AS v(id, key) WHERE c.assignee_id = v.id AND c.assignee_sort <> v.key",
        )
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Text>, _>(keys)
        .execute(conn)?;
    }
    Ok(())
}
