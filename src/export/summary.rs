//! The `summary` part: a PDF/A-2u document of the case, made with krilla. Real text
//! (extractable and searchable) in DejaVu Sans, embedded from the `dejavu` crate.
//!
//! Pages are A4; sections follow one another, each starting with a ruled heading:
//! the title (case number and name, when and by whom exported), **Details** (number,
//! name, kind, status, severity, resolution, assignee, creator, last editor, created,
//! updated, resolved, archive and delete dates, detections, version), **Description**,
//! **Subject** (username, display name, department, title, location, manager, departure
//! date, watchlists, notes), **Findings** (the HTML's headings, paragraphs, bold, italics,
//! underline, numbered and bulleted lists, and links as clickable link annotations),
//! **Risk summary** (detections per severity and the highest), and **MITRE ATT&CK**
//! (each tactic with its techniques and how many detections show them). Every page
//! has a footer with the case number and `page i of n`.

mod findings;
mod layout;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::metadata::Metadata;
use krilla::{Document, SerializeSettings};

use crate::export::{CaseSnapshot, severity_name};
use crate::models::users::User;
use layout::{Fonts, Layout, Span};

const TITLE: f32 = 18.0;
const SECTION: f32 = 14.0;
const BODY: f32 = findings::BODY;

/// The summary of `snapshot` as PDF bytes, exported at `now` by `exported_by`.
pub fn render(
    snapshot: &CaseSnapshot,
    exported_by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<u8>> {
    let fonts = Fonts::load().ok_or_else(|| anyhow::anyhow!("the DejaVu fonts do not parse"))?;
    let case = &snapshot.case;
    let mut layout = Layout::new(&fonts);
    layout.paragraph(
        &[Span::bold(format!("Case {}: {}", case.number, case.name))],
        TITLE,
        0.0,
        None,
    );
    layout.paragraph(
        &[Span::plain(format!("Exported {} by {exported_by}", time(now)))],
        BODY,
        0.0,
        None,
    );

    layout.heading("Details", SECTION);
    let counted = |n: i32| n.to_string();
    let details: Vec<(&str, String)> = vec![
        ("Number", case.number.to_string()),
        ("Name", case.name.clone()),
        ("Kind", case.kind.as_str().to_owned()),
        ("Status", case.status.as_str().to_owned()),
        ("Severity", case.severity.map(severity_name).unwrap_or("none").to_owned()),
        ("Resolution", case.resolution.map(|r| r.as_str()).unwrap_or("none").to_owned()),
        ("Assignee", person(snapshot.assignee.as_ref(), "unassigned")),
        ("Created by", person(snapshot.created_by.as_ref(), "the system")),
        ("Last modified by", person(snapshot.last_modified_by.as_ref(), "nobody")),
        ("Created", time(case.created_at)),
        ("Updated", time(case.updated_at)),
        ("Resolved", case.resolved_at.map(time).unwrap_or_else(|| "not resolved".to_owned())),
        ("Archive at", time(case.archive_at)),
        ("Archived", case.archived_at.map(time).unwrap_or_else(|| "not archived".to_owned())),
        ("Delete at", case.delete_at.map(time).unwrap_or_else(|| "never".to_owned())),
        ("Detections", counted(case.detection_count)),
        ("Version", counted(case.version)),
    ];
    fields(&mut layout, &details);

    layout.heading("Description", SECTION);
    let description = case.description.as_deref().filter(|d| !d.trim().is_empty());
    layout.paragraph(&[Span::plain(description.unwrap_or("No description."))], BODY, 0.0, None);

    layout.heading("Subject", SECTION);
    match &snapshot.subject {
        Some(s) => {
            let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
            let watchlists: Vec<String> = s.watchlists.iter().flatten().cloned().collect();
            fields(
                &mut layout,
                &[
                    ("Username", s.username.clone()),
                    ("Display name", or_none(&s.display_name)),
                    ("Department", or_none(&s.department)),
                    ("Title", or_none(&s.title)),
                    ("Location", or_none(&s.location)),
                    ("Manager", or_none(&s.manager_username)),
                    (
                        "Departure date",
                        s.departure_date.map(|d| d.to_string()).unwrap_or_else(|| "—".to_owned()),
                    ),
                    (
                        "Watchlists",
                        if watchlists.is_empty() {
                            "—".to_owned()
                        } else {
                            watchlists.join(", ")
                        },
                    ),
                    ("Notes", or_none(&s.notes)),
                ],
            );
        }
        None => layout.paragraph(&[Span::plain("No subject.")], BODY, 0.0, None),
    }

    layout.heading("Findings", SECTION);
    match case.findings.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(html) => findings::render(&mut layout, html),
        None => layout.paragraph(&[Span::plain("No findings.")], BODY, 0.0, None),
    }

    layout.heading("Risk summary", SECTION);
    let highest = [
        (case.risk_critical, "CRITICAL"),
        (case.risk_high, "HIGH"),
        (case.risk_medium, "MEDIUM"),
        (case.risk_low, "LOW"),
        (case.risk_informational, "INFORMATIONAL"),
    ]
    .into_iter()
    .find(|(n, _)| *n > 0)
    .map_or("none", |(_, name)| name);
    fields(
        &mut layout,
        &[
            ("Critical", counted(case.risk_critical)),
            ("High", counted(case.risk_high)),
            ("Medium", counted(case.risk_medium)),
            ("Low", counted(case.risk_low)),
            ("Informational", counted(case.risk_informational)),
            ("Highest", highest.to_owned()),
        ],
    );

    layout.heading("MITRE ATT&CK", SECTION);
    if snapshot.mitre.is_empty() {
        layout.paragraph(&[Span::plain("No MITRE ATT&CK techniques.")], BODY, 0.0, None);
    }
    let mut tactic: Option<&str> = None;
    for row in &snapshot.mitre {
        if tactic != Some(row.tactic_id.as_str()) {
            tactic = Some(row.tactic_id.as_str());
            layout.gap(3.0);
            let title = format!("{} {}", row.tactic_id, row.tactic_name);
            layout.paragraph(&[Span::bold(title)], BODY, 0.0, None);
        }
        let detections = if row.count == 1 { "detection" } else { "detections" };
        let text =
            format!("{} {}: {} {detections}", row.technique_id, row.technique_name, row.count);
        layout.paragraph(&[Span::plain(text)], BODY, 18.0, Some("•"));
    }

    let settings = SerializeSettings {
        configuration: ConfigurationBuilder::new()
            .with_archival_validator(Archival::A2_U)
            .finish()
            .map_err(|e| anyhow::anyhow!("PDF configuration: {e:?}"))?,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    document.set_metadata(
        Metadata::new()
            .title(format!("Case {}: {}", case.number, case.name))
            .creator("casefile".to_owned())
            .language("en".to_owned())
            .creation_date(pdf_time(now)),
    );
    layout.render(&mut document, &format!("Case {}", case.number));
    document.finish().map_err(|e| anyhow::anyhow!("writing the summary PDF: {e:?}"))
}

/// `label: value` lines with the label in bold.
fn fields(layout: &mut Layout<'_>, rows: &[(&str, String)]) {
    for (label, value) in rows {
        layout.paragraph(
            &[Span::bold(format!("{label}:")), Span::plain(format!(" {value}"))],
            BODY,
            0.0,
            None,
        );
    }
}

fn person(user: Option<&User>, none: &str) -> String {
    user.map_or_else(|| none.to_owned(), |u| format!("{} <{}>", u.display_name, u.email))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn pdf_time(at: DateTime<Utc>) -> krilla::metadata::DateTime {
    let narrow = |v: u32| u8::try_from(v).unwrap_or(0);
    krilla::metadata::DateTime::new(u16::try_from(at.year()).unwrap_or(2000))
        .month(narrow(at.month()))
        .day(narrow(at.day()))
        .hour(narrow(at.hour()))
        .minute(narrow(at.minute()))
        .second(narrow(at.second()))
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}
