//! Loaders for connections nested under list items (a case's detections, a subject's
//! cases and activity): every parent of a batch that asks with the same arguments gets
//! its page from one statement, so these too do not grow with the page size.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use chrono::{Duration, Utc};

use crate::error::LoadError;
use crate::graphql::loaders::Scope;
use crate::models::cases::{self, Case, list::CaseFilter, list::CaseOrder};
use crate::models::detections::list::{self, DetectionFilter, DetectionOrder, Listed, Parents};
use crate::models::ids::{CaseId, SubjectId};
use crate::models::messages;
use crate::models::page::{Page, PageRequest};

/// Whose detections a nested list holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DetectionParent {
    /// The detections a case holds.
    Case(CaseId),
    /// The detections of an actor (by username key, `models::fold`) in the last `days` days.
    Actor(String),
}

/// The arguments of a nested detection list, shared by every parent that asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DetectionSpec {
    pub filter: DetectionFilter,
    pub order: DetectionOrder,
    pub request: PageRequest,
    /// Only detections observed in the last this many days.
    pub days: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NestedDetections {
    pub parent: DetectionParent,
    pub spec: Arc<DetectionSpec>,
}

/// The arguments of a subject's case list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseSpec {
    pub filter: CaseFilter,
    pub order: CaseOrder,
    pub request: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NestedCases {
    pub subject: SubjectId,
    pub spec: Arc<CaseSpec>,
}

/// Asks for the count of a nested list rather than a page of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountOf<K>(pub K);

/// The groups of keys that share arguments (and, for detections, the kind of parent).
fn groups<K: Clone, S: Clone + Eq + std::hash::Hash>(
    keys: &[K],
    spec: impl Fn(&K) -> S,
) -> Vec<(S, Vec<K>)> {
    let mut out: Vec<(S, Vec<K>)> = Vec::new();
    for key in keys {
        let s = spec(key);
        match out.iter_mut().find(|(g, _)| *g == s) {
            Some((_, members)) => members.push(key.clone()),
            None => out.push((s, vec![key.clone()])),
        }
    }
    out
}

impl DetectionSpec {
    /// The filter with the window of days applied from one moment for the whole batch.
    fn effective_filter(&self, now: chrono::DateTime<Utc>) -> DetectionFilter {
        let mut filter = self.filter.clone();
        if let Some(days) = self.days {
            let from = now - Duration::days(days.into());
            filter.observed_at.from = Some(filter.observed_at.from.map_or(from, |f| f.max(from)));
        }
        filter
    }
}

/// Splits keys into parents of one kind.
fn parents(keys: &[NestedDetections]) -> (Parents, Parents) {
    let mut cases = Vec::new();
    let mut actors = Vec::new();
    for key in keys {
        match &key.parent {
            DetectionParent::Case(id) => cases.push(*id),
            DetectionParent::Actor(actor) => actors.push(actor.clone()),
        }
    }
    (Parents::Cases(cases), Parents::Actors(actors))
}

fn parent_text(parent: &DetectionParent) -> String {
    match parent {
        DetectionParent::Case(id) => id.0.to_string(),
        DetectionParent::Actor(actor) => actor.clone(),
    }
}

/// Pages of nested detection lists.
pub struct NestedDetectionLoader(pub(crate) Scope);

impl Loader<NestedDetections> for NestedDetectionLoader {
    type Value = Arc<Page<Listed>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[NestedDetections],
    ) -> Result<HashMap<NestedDetections, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let now = Utc::now();
        let mut out = HashMap::new();
        for (spec, members) in groups(keys, |k| k.spec.clone()) {
            let filter = spec.effective_filter(now);
            let (cases, actors) = parents(&members);
            for group in [cases, actors] {
                if matches!(&group, Parents::Cases(v) if v.is_empty())
                    || matches!(&group, Parents::Actors(v) if v.is_empty())
                {
                    continue;
                }
                let mut pages = list::pages_by_parent(
                    &mut conn,
                    self.0.tenant,
                    &group,
                    &filter,
                    spec.order,
                    &spec.request,
                )
                .await?;
                for key in &members {
                    if let Some(page) = pages.remove(&parent_text(&key.parent)) {
                        out.insert(key.clone(), Arc::new(page));
                    }
                }
            }
            for key in members {
                out.entry(key).or_insert_with(|| Arc::new(Page { rows: Vec::new(), more: false }));
            }
        }
        Ok(out)
    }
}

impl Loader<CountOf<NestedDetections>> for NestedDetectionLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CountOf<NestedDetections>],
    ) -> Result<HashMap<CountOf<NestedDetections>, i64>, LoadError> {
        let mut conn = self.0.conn().await?;
        let now = Utc::now();
        let mut out = HashMap::new();
        let plain: Vec<NestedDetections> = keys.iter().map(|k| k.0.clone()).collect();
        for (spec, members) in groups(&plain, |k| k.spec.clone()) {
            let filter = spec.effective_filter(now);
            let (cases, actors) = parents(&members);
            let mut counts = HashMap::new();
            for group in [cases, actors] {
                let empty = match &group {
                    Parents::Cases(v) => v.is_empty(),
                    Parents::Actors(v) => v.is_empty(),
                };
                if !empty {
                    counts.extend(
                        list::counts_by_parent(&mut conn, self.0.tenant, &group, &filter).await?,
                    );
                }
            }
            for key in members {
                let count = counts.get(&parent_text(&key.parent)).copied().unwrap_or(0);
                out.insert(CountOf(key), count);
            }
        }
        Ok(out)
    }
}

/// Pages of subjects' case lists.
pub struct NestedCaseLoader(pub(crate) Scope);

impl Loader<NestedCases> for NestedCaseLoader {
    type Value = Arc<Page<Case>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[NestedCases],
    ) -> Result<HashMap<NestedCases, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out = HashMap::new();
        for (spec, members) in groups(keys, |k| k.spec.clone()) {
            let subjects: Vec<SubjectId> = members.iter().map(|k| k.subject).collect();
            let mut pages = cases::list::pages_by_subject(
                &mut conn,
                self.0.tenant,
                &subjects,
                &spec.filter,
                spec.order,
                &spec.request,
            )
            .await?;
            for key in members {
                let page = pages
                    .remove(&key.subject.0.to_string())
                    .unwrap_or(Page { rows: Vec::new(), more: false });
                out.insert(key, Arc::new(page));
            }
        }
        Ok(out)
    }
}

impl Loader<CountOf<NestedCases>> for NestedCaseLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CountOf<NestedCases>],
    ) -> Result<HashMap<CountOf<NestedCases>, i64>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out = HashMap::new();
        let plain: Vec<NestedCases> = keys.iter().map(|k| k.0.clone()).collect();
        for (spec, members) in groups(&plain, |k| k.spec.clone()) {
            let subjects: Vec<SubjectId> = members.iter().map(|k| k.subject).collect();
            let counts =
                cases::list::counts_by_subject(&mut conn, self.0.tenant, &subjects, &spec.filter)
                    .await?;
            for key in members {
                let count = counts.get(&key.subject).copied().unwrap_or(0);
                out.insert(CountOf(key), count);
            }
        }
        Ok(out)
    }
}

/// A page of one case's messages; every case of a batch asking for the same page gets it
/// from one statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NestedMessages {
    pub case: CaseId,
    pub request: Arc<PageRequest>,
}

/// Pages of cases' message lists.
pub struct NestedMessageLoader(pub(crate) Scope);

impl Loader<NestedMessages> for NestedMessageLoader {
    type Value = Arc<Page<messages::Message>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[NestedMessages],
    ) -> Result<HashMap<NestedMessages, Self::Value>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut out = HashMap::new();
        for (request, members) in groups(keys, |k| k.request.clone()) {
            let cases: Vec<CaseId> = members.iter().map(|k| k.case).collect();
            let mut pages =
                messages::pages_by_case(&mut conn, self.0.tenant, &cases, &request).await?;
            for key in members {
                let page = pages.remove(&key.case).unwrap_or_default();
                out.insert(key, Arc::new(page));
            }
        }
        Ok(out)
    }
}

impl Loader<CountOf<NestedMessages>> for NestedMessageLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CountOf<NestedMessages>],
    ) -> Result<HashMap<CountOf<NestedMessages>, i64>, LoadError> {
        let mut conn = self.0.conn().await?;
        let mut cases: Vec<CaseId> = keys.iter().map(|k| k.0.case).collect();
        cases.sort();
        cases.dedup();
        let counts = messages::counts_by_case(&mut conn, self.0.tenant, &cases).await?;
        Ok(keys
            .iter()
            .map(|key| (key.clone(), counts.get(&key.0.case).copied().unwrap_or(0)))
            .collect())
    }
}
