//! One DataLoader per relation and per-case aggregate, built per request and scoped to
//! the viewer's tenant, so the number of SQL statements a request runs does not grow
//! with the page size.

use std::collections::HashMap;

use std::sync::{Arc, Weak};

use async_graphql::dataloader::{DataLoader, Loader};

use crate::db::{DbPool, LossWitness, pool};
use crate::error::LoadError;
use crate::graphql::batching::{Gate, Hold, spawner};
use crate::graphql::nested::{NestedCaseLoader, NestedDetectionLoader, NestedMessageLoader};
use crate::models::detections::list::{EntityCount, TechniqueCount};
use crate::models::events::{self, Event};
use crate::models::ids::{CaseId, DetectionId, MessageId, SubjectId, TenantId, TokenId, UserId};
use crate::models::{
    cases, detections, links, messages, subjects, tenants, tokens, users, webhooks,
};

/// The loaders of one operation.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub api_tokens: DataLoader<ApiTokenLoader>,
    pub user_tokens: DataLoader<UserTokensLoader>,
    pub tenants: DataLoader<TenantLoader>,
    pub cases: DataLoader<CaseLoader>,
    pub detections: DataLoader<DetectionLoader>,
    pub subjects: DataLoader<SubjectLoader>,
    pub subjects_by_username: DataLoader<SubjectByUsernameLoader>,
    pub mitre: DataLoader<MitreLoader>,
    pub entities: DataLoader<EntityLoader>,
    pub detection_cases: DataLoader<DetectionCasesLoader>,
    pub subject_risk: DataLoader<SubjectRiskLoader>,
    pub nested_detections: DataLoader<NestedDetectionLoader>,
    pub nested_cases: DataLoader<NestedCaseLoader>,
    pub activity: DataLoader<ActivityLoader>,
    pub audit_events: DataLoader<AuditEventLoader>,
    pub messages: DataLoader<MessageLoader>,
    pub nested_messages: DataLoader<NestedMessageLoader>,
    pub webhooks: DataLoader<WebhookLoader>,
    gate: Weak<Gate>,
}

impl Loaders {
    /// The loaders of an operation; with `witness`, their connections tell it when they
    /// come back broken (a subscription's serve every event, and have none).
    pub fn new(
        db: DbPool,
        tenant: TenantId,
        gate: &Arc<Gate>,
        witness: Option<LossWitness>,
    ) -> Self {
        let scope = Scope { db, tenant, witness };
        Self {
            users: loader(UserLoader(scope.clone()), gate),
            api_tokens: loader(ApiTokenLoader(scope.clone()), gate),
            user_tokens: loader(UserTokensLoader(scope.clone()), gate),
            tenants: loader(TenantLoader(scope.clone()), gate),
            cases: loader(CaseLoader(scope.clone()), gate),
            detections: loader(DetectionLoader(scope.clone()), gate),
            subjects: loader(SubjectLoader(scope.clone()), gate),
            subjects_by_username: loader(SubjectByUsernameLoader(scope.clone()), gate),
            mitre: loader(MitreLoader(scope.clone()), gate),
            entities: loader(EntityLoader(scope.clone()), gate),
            detection_cases: loader(DetectionCasesLoader(scope.clone()), gate),
            subject_risk: loader(SubjectRiskLoader(scope.clone()), gate),
            nested_detections: loader(NestedDetectionLoader(scope.clone()), gate),
            nested_cases: loader(NestedCaseLoader(scope.clone()), gate),
            activity: loader(ActivityLoader(scope.clone()), gate),
            audit_events: loader(AuditEventLoader(scope.clone()), gate),
            messages: loader(MessageLoader(scope.clone()), gate),
            nested_messages: loader(NestedMessageLoader(scope.clone()), gate),
            webhooks: loader(WebhookLoader(scope), gate),
            gate: Arc::downgrade(gate),
        }
    }

    /// Marks a statement of the operation's own as in flight (see [`Gate::hold`]).
    pub fn hold(&self) -> Option<Hold> {
        self.gate.upgrade().map(|gate| gate.hold())
    }
}

/// A loader of one operation. Behind its gate, fetches start when the operation is quiet,
/// so they need no extra wait for keys.
fn loader<T: Send + Sync + 'static>(fetch: T, gate: &Arc<Gate>) -> DataLoader<T> {
    DataLoader::new(fetch, spawner(gate)).delay(std::time::Duration::ZERO)
}

/// What every loader needs: the pool and the tenant it is confined to.
#[derive(Clone)]
pub struct Scope {
    db: DbPool,
    pub(crate) tenant: TenantId,
    witness: Option<LossWitness>,
}

impl Scope {
    pub(crate) async fn conn(&self) -> Result<crate::db::DbConn, LoadError> {
        Ok(pool::get_witnessed(&self.db, self.witness.as_ref()).await?)
    }
}

/// Defines a loader of rows by id: one `find_many` statement per batch.
macro_rules! by_id_loader {
    ($(#[$doc:meta])* $name:ident, $key:ty, $value:ty, $find:path) => {
        $(#[$doc])*
        pub struct $name(Scope);

        impl Loader<$key> for $name {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                let mut conn = self.0.conn().await?;
                let rows = $find(&mut conn, self.0.tenant, keys).await?;
                Ok(rows.into_iter().map(|row| (row.id, row)).collect())
            }
        }
    };
}

by_id_loader!(
    /// Users of the viewer's tenant by id.
    UserLoader, UserId, users::User, users::find_many
);
by_id_loader!(
    /// API tokens of the viewer's tenant by id.
    ApiTokenLoader, TokenId, tokens::ApiToken, tokens::find_many
);
by_id_loader!(
    /// Cases of the viewer's tenant by id.
    CaseLoader, CaseId, cases::Case, cases::find_many
);
by_id_loader!(
    /// Detections of the viewer's tenant by id.
    DetectionLoader, DetectionId, detections::Detection, detections::find_many
);
by_id_loader!(
    /// Messages of the viewer's tenant by id.
    MessageLoader, MessageId, messages::Message, messages::find_many
);
by_id_loader!(
    /// Webhooks of the viewer's tenant by id.
    WebhookLoader, uuid::Uuid, webhooks::Webhook, webhooks::find_many
);
by_id_loader!(
    /// Subjects of the viewer's tenant by id.
    SubjectLoader, SubjectId, subjects::Subject, subjects::find_many
);

/// The viewer's own tenant; any other tenant id finds nothing.
pub struct TenantLoader(Scope);

impl Loader<TenantId> for TenantLoader {
    type Value = tenants::Tenant;
    type Error = LoadError;

    async fn load(&self, keys: &[TenantId]) -> Result<HashMap<TenantId, Self::Value>, LoadError> {
        if !keys.contains(&self.0.tenant) {
            return Ok(HashMap::new());
        }
        let mut conn = self.0.conn().await?;
        let tenant = tenants::find(&mut conn, self.0.tenant).await?;
        Ok(tenant.into_iter().map(|t| (t.id, t)).collect())
    }
}

/// Subjects by username key (`models::fold`; a detection's `actor_key`).
pub struct SubjectByUsernameLoader(Scope);

impl Loader<String> for SubjectByUsernameLoader {
    type Value = subjects::Subject;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let rows = subjects::find_by_usernames(&mut conn, self.0.tenant, keys).await?;
        Ok(rows.into_iter().map(|s| (s.key(), s)).collect())
    }
}

/// Each user's API tokens, oldest first.
pub struct UserTokensLoader(Scope);

impl Loader<UserId> for UserTokensLoader {
    type Value = Vec<tokens::ApiToken>;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out: HashMap<UserId, Self::Value> = HashMap::new();
        for token in tokens::of_users(&mut conn, self.0.tenant, keys).await? {
            out.entry(token.user_id).or_default().push(token);
        }
        Ok(out)
    }
}

/// Groups rows of several cases by case.
fn by_case<T>(rows: Vec<T>, case_of: impl Fn(&T) -> CaseId) -> HashMap<CaseId, Vec<T>> {
    let mut out: HashMap<CaseId, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(case_of(&row)).or_default().push(row);
    }
    out
}

/// The MITRE technique counts of each case's detections.
pub struct MitreLoader(Scope);

impl Loader<CaseId> for MitreLoader {
    type Value = Vec<TechniqueCount>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let rows = detections::list::mitre_counts(&mut conn, self.0.tenant, keys).await?;
        Ok(by_case(rows, |r| r.case_id))
    }
}

/// The devices, users and addresses of each case's detections.
pub struct EntityLoader(Scope);

impl Loader<CaseId> for EntityLoader {
    type Value = Vec<EntityCount>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let rows = detections::list::impacted_entities(&mut conn, self.0.tenant, keys).await?;
        Ok(by_case(rows, |r| r.case_id))
    }
}

/// The cases holding each detection.
pub struct DetectionCasesLoader(Scope);

impl Loader<DetectionId> for DetectionCasesLoader {
    type Value = Vec<CaseId>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DetectionId],
    ) -> Result<HashMap<DetectionId, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let rows = links::cases_of(&mut conn, self.0.tenant, keys).await?;
        let mut out: HashMap<DetectionId, Vec<CaseId>> = HashMap::new();
        for (detection, case) in rows {
            out.entry(detection).or_default().push(case);
        }
        Ok(out)
    }
}

/// A subject's detections of the last `days` days counted by severity rank (index 1–5).
/// Keys: the username key (`models::fold`) and the number of days.
pub struct SubjectRiskLoader(Scope);

impl Loader<(String, i32)> for SubjectRiskLoader {
    type Value = [i32; 6];
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out: HashMap<(String, i32), [i32; 6]> = HashMap::new();
        let mut windows: Vec<i32> = keys.iter().map(|(_, days)| *days).collect();
        windows.sort_unstable();
        windows.dedup();
        for days in windows {
            let actors: Vec<String> =
                keys.iter().filter(|(_, d)| *d == days).map(|(a, _)| a.clone()).collect();
            let since = chrono::Utc::now() - chrono::Duration::days(days.into());
            let rows =
                detections::list::actor_severity_counts(&mut conn, self.0.tenant, &actors, since)
                    .await?;
            for actor in actors {
                out.insert((actor, days), [0; 6]);
            }
            for row in rows {
                if let Some(counts) = out.get_mut(&(row.actor, days))
                    && let Some(slot) =
                        usize::try_from(row.severity).ok().and_then(|r| counts.get_mut(r))
                {
                    *slot = i32::try_from(row.count).unwrap_or(i32::MAX);
                }
            }
        }
        Ok(out)
    }
}

/// A page of a case's activity: up to `limit` events below the `before` sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActivityPage {
    pub before: Option<i64>,
    pub limit: i64,
}

/// A key of [`ActivityLoader`]: a case's page of activity, or its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityKey {
    Page(CaseId, ActivityPage),
    Count(CaseId),
}

/// What [`ActivityLoader`] answers.
#[derive(Debug, Clone)]
pub enum Activity {
    Page(Vec<Event>),
    Count(i64),
}

/// Each case's activity (newest first) and its count: one statement per distinct page
/// request and one for all counts, whatever the number of cases.
pub struct ActivityLoader(Scope);

impl Loader<ActivityKey> for ActivityLoader {
    type Value = Activity;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ActivityKey],
    ) -> Result<HashMap<ActivityKey, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out = HashMap::new();
        let mut pages: Vec<ActivityPage> = Vec::new();
        let mut counted: Vec<CaseId> = Vec::new();
        for key in keys {
            match key {
                ActivityKey::Page(_, page) if !pages.contains(page) => pages.push(*page),
                ActivityKey::Count(case) => counted.push(*case),
                ActivityKey::Page(..) => {}
            }
        }
        for page in pages {
            let cases: Vec<CaseId> = keys
                .iter()
                .filter_map(|k| match k {
                    ActivityKey::Page(case, p) if *p == page => Some(*case),
                    _ => None,
                })
                .collect();
            let rows =
                events::list::activity(&mut conn, self.0.tenant, &cases, page.before, page.limit)
                    .await?;
            let mut grouped = by_case(rows, |e| e.case_id.unwrap_or_default());
            for case in cases {
                let rows = grouped.remove(&case).unwrap_or_default();
                out.insert(ActivityKey::Page(case, page), Activity::Page(rows));
            }
        }
        if !counted.is_empty() {
            let counts = events::list::activity_counts(&mut conn, self.0.tenant, &counted).await?;
            for case in &counted {
                out.insert(ActivityKey::Count(*case), Activity::Count(0));
            }
            for (case, count) in counts.into_iter().filter_map(|(c, n)| Some((c?, n))) {
                out.insert(ActivityKey::Count(case), Activity::Count(count));
            }
        }
        Ok(out)
    }
}

/// Events of the viewer's tenant by id.
pub struct AuditEventLoader(Scope);

impl Loader<uuid::Uuid> for AuditEventLoader {
    type Value = Event;
    type Error = LoadError;

    async fn load(&self, keys: &[uuid::Uuid]) -> Result<HashMap<uuid::Uuid, Event>, LoadError> {
        let mut conn = self.0.conn().await?;
        let rows = events::find_by_ids(&mut conn, self.0.tenant, keys).await?;
        Ok(rows.into_iter().map(|e| (e.id, e)).collect())
    }
}
