//! Detections: the `Detection` type, its queries (`detections/query.rs`) and ingestion
//! (`detections/ingest.rs`).

pub mod ingest;
pub mod query;

use std::borrow::Cow;

use async_graphql::parser::types::{Field, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextSelectionSet, ID, Object, OutputType, Positioned, ServerResult, SimpleObject,
    Value,
};
use chrono::{DateTime, Utc};

use crate::graphql::cases::{Case, ListedCase};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Conn, PageArgs, Total, connection};
use crate::graphql::plain;
use crate::graphql::subjects::Subject;
use crate::graphql::viewer_and_loaders;
use crate::models::detections;
use crate::models::enums::{DetectionSource, FileAvailability, Severity};
use crate::models::page::{Cursor, Key, KeyType, Page, Tie};

pub use ingest::DetectionMutation;
pub use query::{
    DetectionFilterInput, DetectionOrderInput, DetectionQuery, detection_connection,
    nested_connection,
};

/// What a sensor reported: an XDR detection or a file event.
pub struct Detection(pub detections::Detection);

/// A reason a detection is risky, and its weight in the risk score.
#[derive(SimpleObject)]
pub struct RiskIndicator {
    /// What the sensor found, such as `Uploaded to personal cloud storage`.
    pub name: String,
    /// Its share of the risk score (0 or more).
    pub weight: i32,
}

/// The device a detection was seen on.
#[derive(SimpleObject)]
pub struct Device {
    /// The sensor's id of the device.
    pub id: Option<String>,
    /// The device's hostname.
    pub hostname: String,
    /// What the device is, as the sensor says (such as `laptop` or `server`).
    #[graphql(name = "type")]
    pub device_type: Option<String>,
    /// The device's IP address (IPv4 or IPv6).
    pub ip: Option<String>,
}

/// A MITRE ATT&CK technique and its tactic.
#[derive(SimpleObject, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MitreTechnique {
    /// The tactic's ATT&CK id, such as `TA0010`.
    pub tactic_id: String,
    /// The tactic's name, such as `Exfiltration`.
    pub tactic_name: String,
    /// The technique's ATT&CK id, such as `T1048`.
    pub technique_id: String,
    /// The technique's name.
    pub technique_name: String,
}

/// The file of a file event.
#[derive(SimpleObject)]
pub struct FileInfo {
    /// The file's name.
    pub name: String,
    /// The folder or full path the file was at.
    pub path: Option<String>,
    /// The file's size in bytes (a whole number).
    pub size: Option<f64>,
    /// The SHA-256 of the contents: 64 lowercase hexadecimal digits.
    pub sha256: Option<String>,
    /// The MD5 of the contents: 32 lowercase hexadecimal digits.
    pub md5: Option<String>,
    /// The MIME type, as the sensor says.
    pub mime_type: Option<String>,
    /// Whether the sensor can supply the contents.
    pub availability: FileAvailability,
    /// Whether casefile holds the file's contents.
    pub content_stored: bool,
    /// Where to download the contents, when stored.
    pub download_path: Option<String>,
}

/// What a sensor reported: an XDR detection or a file event. Detections are ingested with
/// `ingestDetections` and never change afterwards; cases hold them. Every role but INGEST
/// reads them.
#[Object]
impl Detection {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Detection, self.0.id.0)
    }

    /// The sensor's id; unique per tenant and source.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// What reported the detection.
    async fn source(&self) -> DetectionSource {
        self.0.source
    }

    /// The name of the sensor's rule that fired.
    async fn rule_name(&self) -> &str {
        &self.0.rule_name
    }

    /// What the sensor says happened.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// When the sensor saw the activity.
    async fn observed_at(&self) -> DateTime<Utc> {
        self.0.observed_at
    }

    /// When casefile stored the detection.
    async fn ingested_at(&self) -> DateTime<Utc> {
        self.0.ingested_at
    }

    /// 0 or more: a sensor's 0–10 severity, or the sum of the risk indicators' weights.
    async fn risk_score(&self) -> i32 {
        self.0.risk_score
    }

    /// From the score: 0 informational, 1–3 low, 4–6 medium, 7–8 high, 9 and up critical.
    async fn severity(&self) -> Severity {
        self.0.severity
    }

    /// The reasons the detection is risky, as ingested.
    async fn risk_indicators(&self) -> Vec<RiskIndicator> {
        risk_indicators(&self.0).collect()
    }

    /// The device the activity was seen on; null when the sensor named none.
    async fn device(&self) -> Option<Device> {
        device(&self.0)
    }

    /// The username of the person who acted.
    async fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }

    /// The subject whose username is the actor, when there is one.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subject>> {
        let Some(actor) = &self.0.actor_key else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(loaders.subjects_by_username.load_one(actor.clone()).await?.map(Subject))
    }

    /// The MITRE ATT&CK techniques the detection shows, as ingested.
    async fn mitre(&self) -> Vec<MitreTechnique> {
        mitre(&self.0)
    }

    /// The file of a file event; null when there is none.
    async fn file(&self) -> Option<FileInfo> {
        file(&self.0)
    }

    /// The original JSON the sensor sent (at most 64 KiB).
    async fn raw(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.raw.as_ref().and_then(|raw| raw.parse()).map(async_graphql::Json)
    }

    /// The cases holding this detection, by number. `first` out of range or a foreign
    /// cursor answers `VALIDATION_FAILED`.
    async fn cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many cases (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The cases after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ListedCase>> {
        let (_, loaders) = viewer_and_loaders(ctx)?;
        let request = PageArgs::forward(first, after)
            .request(|text| Cursor::decode(text, "detection-case", KeyType::Int, true))?;
        let ids = loaders.detection_cases.load_one(self.0.id).await?.unwrap_or_default();
        let mut cases: Vec<_> = loaders.cases.load_many(ids).await?.into_values().collect();
        cases.sort_by_key(|c| c.number);
        let total = cases.len() as i64;
        let after = match &request.cursor {
            Some(Cursor { key: Key::Int(n), .. }) => Some(*n),
            _ => None,
        };
        let rows: Vec<_> = cases
            .into_iter()
            .filter(|c| after.is_none_or(|n| i64::from(c.number) > n))
            .take(usize::try_from(request.limit + 1).unwrap_or(usize::MAX))
            .collect();
        let cursor = |c: &crate::models::cases::Case| {
            let n = i64::from(c.number);
            Cursor { order: "detection-case".into(), key: Key::Int(n), tie: Tie::Number(n) }
                .encode()
        };
        Ok(connection(
            Page::from_scan(rows, &request),
            &request,
            Total::Known(total),
            cursor,
            |c| ListedCase(Case(c)),
        ))
    }
}

/// The device of a detection, null when the sensor named none.
fn device(d: &detections::Detection) -> Option<Device> {
    d.device_hostname.as_ref().map(|hostname| Device {
        id: d.device_id.clone(),
        hostname: hostname.clone(),
        device_type: d.device_type.clone(),
        ip: d.device_ip.clone(),
    })
}

/// The file of a file event, null when there is none.
fn file(d: &detections::Detection) -> Option<FileInfo> {
    d.file_name.as_ref().map(|name| FileInfo {
        name: name.clone(),
        path: d.file_path.clone(),
        size: d.file_size.map(|s| s as f64),
        sha256: d.file_sha256.clone(),
        md5: d.file_md5.clone(),
        mime_type: d.file_mime_type.clone(),
        availability: d.file_availability(),
        content_stored: d.file_content_stored,
        download_path: d.file_content_stored.then(|| download_path(d)),
    })
}

fn download_path(d: &detections::Detection) -> String {
    format!("/detections/{}/file", ids::encode(Kind::Detection, d.id.0).0)
}

/// The risk indicators as ingested (each a name and a weight), read in place.
fn risk_indicators(d: &detections::Detection) -> impl Iterator<Item = RiskIndicator> + '_ {
    indicators(d).map(|(name, weight)| RiskIndicator { name: name.into_owned(), weight })
}

/// One risk indicator as stored: ingestion writes both keys; a missing name reads as
/// empty and a weight that is not a 32-bit integer as 0.
#[derive(serde::Deserialize)]
struct StoredIndicator<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(default)]
    weight: Option<serde_json::Number>,
}

fn indicators(d: &detections::Detection) -> impl Iterator<Item = (Cow<'_, str>, i32)> + '_ {
    let stored: Vec<StoredIndicator<'_>> = d.risk_indicators.parse().unwrap_or_default();
    stored.into_iter().map(|item| {
        let weight = item.weight.and_then(|w| w.as_i64()).and_then(|w| i32::try_from(w).ok());
        (item.name, weight.unwrap_or(0))
    })
}

/// The MITRE techniques as ingested.
fn mitre(d: &detections::Detection) -> Vec<MitreTechnique> {
    d.mitre.parse().unwrap_or_default()
}

/// A detection as an item of a list (a case page, a subject's activity, the detection
/// list): built by [`plain`] when every field asked for is a plain value of the row, as
/// on a case page, and resolved as a [`Detection`] otherwise. The same GraphQL type.
pub struct ListedDetection(pub Detection);

impl OutputType for ListedDetection {
    fn type_name() -> Cow<'static, str> {
        Detection::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Detection::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match plain_detection(&self.0.0, &ctx.item.node) {
            Some(value) => Ok(value),
            None => OutputType::resolve(&self.0, ctx, field).await,
        }
    }
}

/// The detection `set` asks of, when every field it selects is plain (see [`plain`]);
/// the names and values are those of `Detection`'s resolvers above.
fn plain_detection(d: &detections::Detection, set: &SelectionSet) -> Option<Value> {
    plain::object(set, "Detection", |name, selection| {
        Some(match name {
            "id" => Value::String(ids::encode(Kind::Detection, d.id.0).0),
            "externalId" => plain::text(&d.external_id),
            "source" => plain::enumeration(d.source),
            "ruleName" => plain::text(&d.rule_name),
            "description" => plain::optional_text(d.description.as_deref()),
            "observedAt" => plain::scalar(&d.observed_at),
            "ingestedAt" => plain::scalar(&d.ingested_at),
            "riskScore" => plain::scalar(&d.risk_score),
            "severity" => plain::enumeration(d.severity),
            "actor" => plain::optional_text(d.actor.as_deref()),
            "riskIndicators" => plain::list(indicators(d), |(name, weight)| {
                plain::object(selection, "RiskIndicator", |field, _| match field {
                    "name" => Some(plain::text(&name)),
                    "weight" => Some(plain::scalar(&weight)),
                    _ => None,
                })
            })?,
            "device" => match &d.device_hostname {
                None => Value::Null,
                Some(hostname) => plain::object(selection, "Device", |field, _| {
                    Some(match field {
                        "id" => plain::optional_text(d.device_id.as_deref()),
                        "hostname" => plain::text(hostname),
                        "type" => plain::optional_text(d.device_type.as_deref()),
                        "ip" => plain::optional_text(d.device_ip.as_deref()),
                        _ => return None,
                    })
                })?,
            },
            "file" => match &d.file_name {
                None => Value::Null,
                Some(file_name) => plain::object(selection, "FileInfo", |field, _| {
                    Some(match field {
                        "name" => plain::text(file_name),
                        "path" => plain::optional_text(d.file_path.as_deref()),
                        "size" => plain::optional_scalar(d.file_size.map(|s| s as f64).as_ref()),
                        "sha256" => plain::optional_text(d.file_sha256.as_deref()),
                        "md5" => plain::optional_text(d.file_md5.as_deref()),
                        "mimeType" => plain::optional_text(d.file_mime_type.as_deref()),
                        "availability" => plain::enumeration(d.file_availability()),
                        "contentStored" => plain::scalar(&d.file_content_stored),
                        "downloadPath" => plain::optional_text(
                            d.file_content_stored.then(|| download_path(d)).as_deref(),
                        ),
                        _ => return None,
                    })
                })?,
            },
            "mitre" => plain::list(mitre(d), |technique| {
                plain::object(selection, "MitreTechnique", |field, _| {
                    Some(match field {
                        "tacticId" => plain::text(&technique.tactic_id),
                        "tacticName" => plain::text(&technique.tactic_name),
                        "techniqueId" => plain::text(&technique.technique_id),
                        "techniqueName" => plain::text(&technique.technique_name),
                        _ => return None,
                    })
                })
            })?,
            // `raw`, `subject` and `cases` (and anything new) go the usual way.
            _ => return None,
        })
    })
}
