//! Case export: the `summary` PDF (`export/summary.rs`), the `fileActivity` CSV
//! (`export/activity.rs`), the `files` folder names (`export/names.rs`) and the ZIP
//! package with its `manifest.json` (`export/package.rs`). The domain step that reads a
//! case for export is `domain::export`; the route is `http::export`.

pub mod activity;
pub mod names;
pub mod package;
pub mod summary;

use crate::domain::audit::Checkpoint;
use crate::error::{AppError, AppResult};
use crate::models::cases::Case;
use crate::models::detections::{ExportedDetection, list::TechniqueCount};
use crate::models::enums::Severity;
use crate::models::events::Event;
use crate::models::evidence::CaseContent;
use crate::models::subjects::Subject;
use crate::models::users::User;

/// What an export may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The case summary as a PDF.
    Summary,
    /// Every detection on the case as a CSV.
    FileActivity,
    /// The stored file contents, one folder per file event.
    Files,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Summary, Part::FileActivity, Part::Files];

    /// The name in the `parts` query parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Part::Summary => "summary",
            Part::FileActivity => "fileActivity",
            Part::Files => "files",
        }
    }
}

/// The parts of `parts=summary,fileActivity,files`, in that order without repeats; absent
/// means all three. Anything else is `VALIDATION_FAILED` on the field `parts`.
pub fn parse_parts(parts: Option<&str>) -> AppResult<Vec<Part>> {
    let Some(text) = parts else { return Ok(Part::ALL.to_vec()) };
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        let part = Part::ALL.into_iter().find(|p| p.as_str() == name).ok_or_else(|| {
            AppError::validation(
                "parts",
                format!(
                    "unknown export part `{}`: give a comma-separated list of summary, fileActivity, files",
                    name.chars().take(40).collect::<String>()
                ),
            )
        })?;
        if !out.contains(&part) {
            out.push(part);
        }
    }
    out.sort();
    Ok(out)
}

/// Everything an export shows of one case, read in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct CaseSnapshot {
    pub case: Case,
    pub subject: Option<Subject>,
    pub assignee: Option<User>,
    pub created_by: Option<User>,
    pub last_modified_by: Option<User>,
    /// The viewer who exports.
    pub exporter: Option<User>,
    /// The stored contents of the case's detections (read only when `files` is asked for).
    pub contents: Vec<CaseContent>,
    /// The case's change-record events, oldest first (read only for a package).
    pub events: Vec<Event>,
    /// The tenant's change record signed at the snapshot (read only for a package).
    pub checkpoint: Option<Checkpoint>,
    pub detections: Vec<ExportedDetection>,
    pub mitre: Vec<TechniqueCount>,
}

/// The file name of a part answered alone.
pub fn single_file_name(number: i32, part: Part) -> String {
    match part {
        Part::Summary => format!("case-{number}-summary.pdf"),
        Part::FileActivity => format!("case-{number}-file-activity.csv"),
        Part::Files => format!("case-{number}.zip"),
    }
}

/// The GraphQL name of a severity.
pub const fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Informational => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_default_to_all_and_reject_unknown_names() {
        assert_eq!(parse_parts(None).ok(), Some(Part::ALL.to_vec()));
        assert_eq!(
            parse_parts(Some("files, summary,files")).ok(),
            Some(vec![Part::Summary, Part::Files])
        );
        for bad in ["", "pdf", "summary,", "Summary"] {
            match parse_parts(Some(bad)) {
                Err(AppError::Validation { field, .. }) => assert_eq!(field, "parts"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
