//! Legal hold: `setLegalHold` and the `LegalHold` a case shows while held.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain::retention;
use crate::graphql::cases::Case;
use crate::graphql::cases::mutation::CasePayload;
use crate::graphql::ids::{self, Kind};
use crate::graphql::own_conn;
use crate::graphql::users::User;
use crate::graphql::viewer_and_loaders;
use crate::models::ids::{CaseId, UserId};

/// A legal hold on a case: while set, the case is never archived or deleted, by hand or
/// by a retention job.
pub struct LegalHold {
    pub reason: String,
    pub set_by: Option<UserId>,
    pub set_at: DateTime<Utc>,
}

impl LegalHold {
    /// The hold of a case row, when it is held.
    pub fn of(case: &crate::models::cases::Case) -> Option<Self> {
        Some(LegalHold {
            reason: case.legal_hold_reason.clone()?,
            set_by: case.legal_hold_set_by_id,
            set_at: case.legal_hold_set_at?,
        })
    }
}

/// A legal hold on a case: while set, the case is never archived or deleted, by hand or
/// by a retention job.
#[Object]
impl LegalHold {
    /// Why the case is held (a matter, a court order, a request from legal).
    async fn reason(&self) -> &str {
        &self.reason
    }

    /// Who set the hold.
    async fn set_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.set_by else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(loaders.users.load_one(id).await?.map(User))
    }

    /// When the hold was set.
    async fn set_at(&self) -> DateTime<Utc> {
        self.set_at
    }
}

/// A legal hold to set or lift.
#[derive(InputObject)]
pub struct SetLegalHoldInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub case_id: ID,
    /// Why the case is held (1–1,000 characters); null or absent lifts the hold.
    pub reason: Option<String>,
}

#[derive(Default)]
pub struct LegalHoldMutation;

#[Object]
impl LegalHoldMutation {
    /// Sets a legal hold on a case with a reason, or lifts it (reason null or absent).
    /// While held, a case is never archived or deleted, by hand (`LEGAL_HOLD`) or by a
    /// retention job. Setting and lifting are recorded. ADMIN and ANALYST. Errors:
    /// `FORBIDDEN`, `NOT_FOUND`, `VALIDATION_FAILED` (a blank or too long reason).
    async fn set_legal_hold(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the hold's reason.")] input: SetLegalHoldInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = CaseId(ids::expect(Kind::Case, &input.case_id, "caseId")?);
        let mut conn = own_conn(ctx).await?;
        let case = retention::set_legal_hold(&mut conn, viewer, id, input.reason).await?;
        Ok(CasePayload { client_mutation_id: input.client_mutation_id, case: Case(case) })
    }
}
