//! The `fileActivity` part: one CSV row per detection on the case (the `csv` crate, UTF-8).

use chrono::SecondsFormat;

use crate::export::severity_name;
use crate::models::detections::ExportedDetection;

/// The header row, in this order.
pub const HEADER: [&str; 15] = [
    "externalId",
    "observedAt",
    "source",
    "ruleName",
    "riskScore",
    "severity",
    "riskIndicators",
    "actor",
    "deviceHostname",
    "fileName",
    "filePath",
    "fileSize",
    "sha256",
    "md5",
    "availability",
];

/// A cell a spreadsheet would run as a formula (first character `=`, `+`, `-`, `@`, tab or
/// carriage return) gets a leading `'`, so it is shown as text.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The risk indicators as `name (weight)`, joined with `; `.
fn indicators(value: &serde_json::Value) -> String {
    value
        .as_array()
        .map(|list| {
            list.iter()
                .map(|item| {
                    let name = item["name"].as_str().unwrap_or_default();
                    match item["weight"].as_i64() {
                        Some(weight) => format!("{name} ({weight})"),
                        None => name.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The CSV of these detections: the header row, then one row each.
pub fn write(detections: &[ExportedDetection]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(256 * (detections.len() + 1)));
    writer.write_record(HEADER)?;
    for d in detections {
        let availability = d.file_availability.map(|a| a.as_str()).unwrap_or_default();
        let row = [
            d.external_id.clone(),
            d.observed_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            d.source.as_str().to_owned(),
            d.rule_name.clone(),
            d.risk_score.to_string(),
            severity_name(d.severity).to_owned(),
            indicators(&d.risk_indicators),
            d.actor.clone().unwrap_or_default(),
            d.device_hostname.clone().unwrap_or_default(),
            d.file_name.clone().unwrap_or_default(),
            d.file_path.clone().unwrap_or_default(),
            d.file_size.map(|s| s.to_string()).unwrap_or_default(),
            d.file_sha256.clone().unwrap_or_default(),
            d.file_md5.clone().unwrap_or_default(),
            availability.to_owned(),
        ];
        writer.write_record(row.iter().map(|cell| neutralize(cell).into_owned()))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formula_cells_get_a_leading_quote() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(cell), format!("'{cell}"));
        }
        for cell in ["", "plain", "a=b", "1-2"] {
            assert_eq!(neutralize(cell), cell);
        }
    }
}
