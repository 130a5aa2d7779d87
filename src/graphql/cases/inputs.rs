//! The inputs of the case list: filter and order, turned into the model's.

use async_graphql::{ID, InputObject};

use crate::error::{AppError, AppResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::{DateTimeRange, OrderDirection};
use crate::models::cases::list::{CaseFilter, CaseOrder, CaseOrderField};
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::ids::{DetectionId, UserId};

/// Which cases a list holds. Every field given narrows the list.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "CaseFilter")]
pub struct CaseFilterInput {
    /// Absent: the open statuses (NEW, INVESTIGATING, ON_HOLD, ACTION_REQUIRED).
    pub status: Option<Vec<CaseStatus>>,
    /// Cases of any of these kinds; absent: every kind.
    pub kind: Option<Vec<CaseKind>>,
    /// Cases of any of these severities (cases without a severity never match).
    pub severity: Option<Vec<Severity>>,
    /// Cases resolved with any of these verdicts. Give a `status` with RESOLVED (or
    /// ARCHIVED) too: by default only open cases are listed, and they have no verdict.
    pub resolution: Option<Vec<Resolution>>,
    /// Cases assigned to any of these users (at most 100 User ids; ids of another type
    /// answer `VALIDATION_FAILED`).
    pub assignee_ids: Option<Vec<ID>>,
    /// true: only unassigned cases (or, with assigneeIds, those too); false: only assigned ones.
    pub unassigned: Option<bool>,
    /// The subject's username, ignoring case (at most 255 characters).
    pub subject_username: Option<String>,
    /// Part of the name, ignoring case (at most 255 characters).
    pub name_contains: Option<String>,
    /// Words in the name, description or findings (at most 255 characters).
    pub search: Option<String>,
    /// Cases created in this range.
    pub created_at: Option<DateTimeRange>,
    /// Cases last changed in this range.
    pub updated_at: Option<DateTimeRange>,
    /// Cases whose `archiveAt` is in this range.
    pub archive_at: Option<DateTimeRange>,
    /// Cases holding this detection (a Detection id).
    pub has_detection: Option<ID>,
}

/// Longest text a text filter takes.
const FILTER_TEXT_MAX: usize = 255;

/// A text filter's value, or `VALIDATION_FAILED` on `field` when it is too long.
pub(crate) fn filter_text(value: Option<String>, field: &str) -> AppResult<Option<String>> {
    match value {
        Some(text) if text.chars().count() > FILTER_TEXT_MAX => Err(AppError::validation(
            field,
            format!("`{field}` has at most {FILTER_TEXT_MAX} characters"),
        )),
        other => Ok(other),
    }
}

impl CaseFilterInput {
    /// The model's filter. Ids that are not ids of the right type are `VALIDATION_FAILED`;
    /// ids of another tenant simply match nothing.
    pub fn into_model(self) -> AppResult<CaseFilter> {
        let assignee_ids = match self.assignee_ids {
            Some(list) => {
                if list.len() > 100 {
                    return Err(AppError::validation("assigneeIds", "at most 100 ids"));
                }
                Some(
                    list.iter()
                        .map(|id| ids::expect(Kind::User, id, "assigneeIds").map(UserId))
                        .collect::<AppResult<Vec<_>>>()?,
                )
            }
            None => None,
        };
        let has_detection = self
            .has_detection
            .map(|id| ids::expect(Kind::Detection, &id, "hasDetection").map(DetectionId))
            .transpose()?;
        Ok(CaseFilter {
            statuses: self.status.unwrap_or_else(|| CaseStatus::OPEN.to_vec()),
            kinds: self.kind,
            severities: self.severity,
            resolutions: self.resolution,
            assignee_ids,
            unassigned: self.unassigned,
            subject_username: filter_text(self.subject_username, "subjectUsername")?,
            name_contains: filter_text(self.name_contains, "nameContains")?,
            search: filter_text(self.search, "search")?,
            created_at: self.created_at.into(),
            updated_at: self.updated_at.into(),
            archive_at: self.archive_at.into(),
            has_detection,
            ids: None,
        })
    }
}

/// An order of the case list; the default is UPDATED_AT DESC. Ties are broken by number.
#[derive(Debug, Clone, Copy, InputObject)]
#[graphql(name = "CaseOrder")]
pub struct CaseOrderInput {
    /// What to sort by.
    pub field: CaseOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<Option<CaseOrderInput>> for CaseOrder {
    fn from(value: Option<CaseOrderInput>) -> Self {
        value
            .map(|o| CaseOrder { field: o.field, direction: o.direction.into() })
            .unwrap_or_default()
    }
}
