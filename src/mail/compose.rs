//! Which mails an event of the change record makes, to whom, saying what.
//!
//! - `case.created`: to the tenant's `caseCreatedRecipients`: the case's number, name,
//!   kind, severity, the detections' count and highest severity, the devices affected.
//!   A case created with an assignee is also an assignment (below).
//! - a change of a case's assignee (`assignee` among the changes), per the tenant's
//!   `assignmentMail`: `ALL` the assignee added, the one removed and the one who made the
//!   change; `CHANGER_ONLY` only the latter; `NEVER` nobody. Deactivated users get none.
//! - `MESSAGE_POSTED` on an MDR or Managed Risk service request: to the other side, the
//!   provider's message (by a PROVIDER_ANALYST) to `caseCreatedRecipients`, the
//!   customer's to the tenant's active PROVIDER_ANALYST users; with the message's text.
//!
//! A mail reads the case, the people and the settings as they are when it is sent (usually
//! within a second of the change). A case or message gone by then (deleted, archived)
//! makes no mail: what was removed is not sent. No body carries findings, descriptions or
//! any message but the one notified.

use std::collections::HashSet;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use crate::graphql::ids::{self, Kind};
use crate::mail::render::{Content, Notice};
use crate::models::cases::{self, Case};
use crate::models::enums::{CaseKind, CaseStatus, Severity};
use crate::models::events::{CaseEventKind, Event};
use crate::models::fold::fold;
use crate::models::ids::{MessageId, UserId};
use crate::models::mail::{self, Devices};
use crate::models::messages;
use crate::models::tenants::{self, AssignmentMail, Tenant};
use crate::models::users::{self, Role, User};

/// How many devices a case-created mail names (the rest are counted).
const DEVICES_SHOWN: i64 = 20;

/// One mail to send: which event it is about, which of the event's mails it is, the
/// recipients and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The event's id: with `part`, the mail's `Message-ID`.
    pub event: Uuid,
    /// `created`, `assigned` or `message`.
    pub part: &'static str,
    /// Mail addresses, without duplicates ignoring case.
    pub to: Vec<String>,
    pub content: Content,
}

/// What an event may be mailed as, read from the event alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Concerns {
    created: bool,
    assigned: bool,
    posted: bool,
}

fn concerns_of(event: &Event) -> Concerns {
    let kind = event.case_event_kind();
    Concerns {
        created: event.action == "case.created" && kind == Some(CaseEventKind::Created),
        assigned: event.changes.get("assignee").is_some()
            && matches!(event.action.as_str(), "case.created" | "case.updated"),
        posted: kind == Some(CaseEventKind::MessagePosted),
    }
}

/// Whether `event` may make a mail at all (without reading anything): most events do not.
pub fn concerns(event: &Event) -> bool {
    event.case_id.is_some() && concerns_of(event) != Concerns::default()
}

/// The mails `event` makes (none for most events).
pub async fn compose(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<Vec<Mail>> {
    let Some(case_id) = event.case_id else { return Ok(Vec::new()) };
    let Concerns { created, assigned, posted } = concerns_of(event);
    if !(created || assigned || posted) {
        return Ok(Vec::new());
    }
    let tenant = event.tenant_id;
    let (Some(settings), Some(case)) =
        (tenants::find(conn, tenant).await?, cases::find(conn, tenant, case_id).await?)
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if created && !settings.case_created_recipients.is_empty() {
        let devices = mail::case_devices(conn, tenant, case.id, DEVICES_SHOWN).await?;
        let creator = match event.actor_id {
            Some(id) => users::find(conn, tenant, id).await?,
            None => None,
        };
        let notice = case_created(&case, creator.as_ref(), &devices);
        out.extend(mail(event, "created", settings.case_created_recipients.clone(), notice));
    }
    if assigned && settings.assignment_mail != AssignmentMail::Never {
        out.extend(assignment(conn, event, &settings, &case).await?);
    }
    if posted && case.kind.is_service_request() {
        out.extend(message_posted(conn, event, &settings, &case).await?);
    }
    Ok(out)
}

/// A mail of `event` to `to` (duplicates dropped ignoring case); none without recipients.
fn mail(event: &Event, part: &'static str, to: Vec<String>, notice: Notice) -> Option<Mail> {
    let mut seen = HashSet::new();
    let to: Vec<String> = to.into_iter().filter(|a| seen.insert(fold(a))).collect();
    (!to.is_empty()).then(|| Mail { event: event.id, part, to, content: notice.render() })
}

fn case_created(case: &Case, creator: Option<&User>, devices: &Devices) -> Notice {
    let detections = match (case.detection_count, highest(case)) {
        (0, _) => "none".to_owned(),
        (n, Some(severity)) => format!("{n} (highest severity: {})", severity_label(severity)),
        (n, None) => n.to_string(),
    };
    let by = match creator {
        Some(user) => person(user),
        None if case.auto_created => "casefile (an automatic case)".to_owned(),
        None => "casefile".to_owned(),
    };
    Notice {
        subject: format!("Case #{} created: {}", case.number, case.name),
        lead: format!("Case #{} was created.", case.number),
        facts: vec![
            ("Case", format!("#{} {}", case.number, case.name)),
            ("Kind", kind_label(case.kind).to_owned()),
            ("Severity", case.severity.map_or("not set", severity_label).to_owned()),
            ("Status", status_label(case.status).to_owned()),
            ("Created by", by),
            ("Detections", detections),
            ("Devices affected", devices_line(devices)),
        ],
        quote: None,
    }
}

/// The assignment mail of an event whose changes hold `assignee` (before and after).
async fn assignment(
    conn: &mut AsyncPgConnection,
    event: &Event,
    settings: &Tenant,
    case: &Case,
) -> QueryResult<Option<Mail>> {
    let side = |which: &str| user_id(event.changes.get("assignee").and_then(|a| a.get(which)));
    let (removed, added) = (side("before"), side("after"));
    let wanted: Vec<UserId> = [removed, added, event.actor_id].into_iter().flatten().collect();
    let people = users::find_many(conn, event.tenant_id, &wanted).await?;
    let find = |id: Option<UserId>| id.and_then(|id| people.iter().find(|u| u.id == id));
    let (removed, added, changer) = (find(removed), find(added), find(event.actor_id));
    let recipients: Vec<&User> = match settings.assignment_mail {
        AssignmentMail::All => [added, removed, changer].into_iter().flatten().collect(),
        AssignmentMail::ChangerOnly => changer.into_iter().collect(),
        AssignmentMail::Never => Vec::new(),
    };
    let to = recipients.into_iter().filter(|u| u.active).map(|u| u.email.clone()).collect();
    let name = |user: Option<&User>| user.map_or_else(|| "nobody".to_owned(), person);
    let subject = match added {
        Some(user) => {
            format!("Case #{} assigned to {}: {}", case.number, user.display_name, case.name)
        }
        None => format!("Case #{} unassigned: {}", case.number, case.name),
    };
    let notice = Notice {
        subject,
        lead: format!("The assignee of case #{} changed.", case.number),
        facts: vec![
            ("Case", format!("#{} {}", case.number, case.name)),
            ("Assigned to", name(added)),
            ("Previously", name(removed)),
            ("Changed by", changer.map_or_else(|| "casefile".to_owned(), person)),
        ],
        quote: None,
    };
    Ok(mail(event, "assigned", to, notice))
}

/// The mail of a message on a service request, to the other side.
async fn message_posted(
    conn: &mut AsyncPgConnection,
    event: &Event,
    settings: &Tenant,
    case: &Case,
) -> QueryResult<Option<Mail>> {
    let Some(Some((Kind::Message, id))) = event.target_id.as_deref().map(ids::decode) else {
        return Ok(None);
    };
    let found = messages::find_many(conn, event.tenant_id, &[MessageId(id)]).await?;
    let Some(message) = found.into_iter().next() else { return Ok(None) };
    let author = users::find(conn, event.tenant_id, message.author_id).await?;
    let from_provider = author.as_ref().is_some_and(|a| a.role == Role::ProviderAnalyst);
    let to = if from_provider {
        settings.case_created_recipients.clone()
    } else {
        mail::provider_analysts(conn, event.tenant_id).await?.into_iter().map(|u| u.email).collect()
    };
    let who = author.as_ref().map_or_else(|| "someone".to_owned(), |a| a.display_name.clone());
    let side = if from_provider { "the provider's team" } else { "the customer" };
    let notice = Notice {
        subject: format!("Case #{} new message from {}: {}", case.number, who, case.name),
        lead: format!("{who} ({side}) posted a message on case #{}.", case.number),
        facts: vec![
            ("Case", format!("#{} {}", case.number, case.name)),
            ("Kind", kind_label(case.kind).to_owned()),
            ("From", author.as_ref().map_or_else(|| "someone".to_owned(), person)),
            ("Posted", message.created_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        ],
        quote: Some(message.body),
    };
    Ok(mail(event, "message", to, notice))
}

/// A user id from a global id in the record's changes.
fn user_id(value: Option<&Value>) -> Option<UserId> {
    match ids::decode(value?.as_str()?)? {
        (Kind::User, id) => Some(UserId(id)),
        _ => None,
    }
}

fn person(user: &User) -> String {
    format!("{} ({})", user.display_name, user.email)
}

/// The highest severity among the case's detections.
fn highest(case: &Case) -> Option<Severity> {
    let counts = [
        (case.risk_critical, Severity::Critical),
        (case.risk_high, Severity::High),
        (case.risk_medium, Severity::Medium),
        (case.risk_low, Severity::Low),
        (case.risk_informational, Severity::Informational),
    ];
    counts.into_iter().find(|(count, _)| *count > 0).map(|(_, severity)| severity)
}

fn devices_line(devices: &Devices) -> String {
    if devices.names.is_empty() {
        return "none recorded".to_owned();
    }
    let mut line = devices.names.join(", ");
    let more = devices.total - devices.names.len() as i64;
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Informational => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

fn kind_label(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::SelfManaged => "Self-managed case",
        CaseKind::MdrServiceRequest => "MDR service request",
        CaseKind::ManagedRiskServiceRequest => "Managed Risk service request",
    }
}

fn status_label(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::New => "New",
        CaseStatus::Investigating => "Investigating",
        CaseStatus::OnHold => "On hold",
        CaseStatus::ActionRequired => "Action required",
        CaseStatus::Resolved => "Resolved",
        CaseStatus::Archived => "Archived",
    }
}
