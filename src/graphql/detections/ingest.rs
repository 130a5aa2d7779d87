//! `ingestDetections`: sensors and integrations report detections.

use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::ingest::{self, DetectionDraft, DeviceDraft, FileDraft};
use crate::graphql::cases::Case;
use crate::graphql::detections::Detection;
use crate::graphql::own_conn;
use crate::graphql::viewer_and_loaders;
use crate::models::enums::{DetectionSource, FileAvailability};

/// Detections to store.
#[derive(InputObject)]
pub struct IngestDetectionsInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// At most 1,000. A `VALIDATION_FAILED` error's `field` starts with the detection's
    /// place in this list (`detections.3.ruleName`).
    pub detections: Vec<DetectionInput>,
}

/// One detection as a sensor reports it. Text is trimmed; limits are in characters.
#[derive(InputObject)]
pub struct DetectionInput {
    /// The sensor's id (1–200 characters): ingesting the same externalId and source again
    /// is a no-op.
    pub external_id: String,
    /// What reported the detection.
    pub source: DetectionSource,
    /// The name of the rule that fired (1–200 characters).
    pub rule_name: String,
    /// What happened (at most 10,000 characters).
    pub description: Option<String>,
    /// When the sensor saw the activity.
    pub observed_at: DateTime<Utc>,
    /// 0 or more: a sensor's 0–10 severity, or the sum of the risk indicators' weights.
    /// The detection's severity follows from it.
    pub risk_score: i32,
    /// Why the detection is risky (at most 100).
    pub risk_indicators: Option<Vec<RiskIndicatorInput>>,
    /// The device the activity was seen on.
    pub device: Option<DeviceInput>,
    /// The username of the person who acted (at most 254 characters); links the
    /// detection to the subject of that username.
    pub actor: Option<String>,
    /// The MITRE ATT&CK techniques the detection shows (at most 100).
    pub mitre: Option<Vec<MitreTechniqueInput>>,
    /// The file of a file event.
    pub file: Option<FileInfoInput>,
    /// The original JSON, at most 64 KiB.
    pub raw: Option<Json<serde_json::Value>>,
}

/// A reason a detection is risky.
#[derive(InputObject)]
pub struct RiskIndicatorInput {
    /// What the sensor found (1–200 characters).
    pub name: String,
    /// Its share of the risk score: 0 or more.
    pub weight: i32,
}

/// The device a detection was seen on.
#[derive(InputObject)]
pub struct DeviceInput {
    /// The sensor's id of the device (at most 200 characters).
    pub id: Option<String>,
    /// The hostname (1–255 characters).
    pub hostname: String,
    /// What the device is (at most 100 characters).
    #[graphql(name = "type")]
    pub device_type: Option<String>,
    /// An IPv4 or IPv6 address.
    pub ip: Option<String>,
}

/// A MITRE ATT&CK technique and its tactic.
#[derive(InputObject)]
pub struct MitreTechniqueInput {
    /// The tactic's ATT&CK id, such as `TA0010` (1–20 characters).
    pub tactic_id: String,
    /// The tactic's name (1–200 characters).
    pub tactic_name: String,
    /// The technique's ATT&CK id, such as `T1048` (1–20 characters).
    pub technique_id: String,
    /// The technique's name (1–200 characters).
    pub technique_name: String,
}

/// The file of a file event.
#[derive(InputObject)]
pub struct FileInfoInput {
    /// The file's name (1–1,000 characters).
    pub name: String,
    /// Where the file was (at most 4,000 characters).
    pub path: Option<String>,
    /// Bytes: a whole number, 0 or more.
    pub size: Option<f64>,
    /// The SHA-256 of the contents: 64 hexadecimal digits (stored in lowercase).
    pub sha256: Option<String>,
    /// The MD5 of the contents: 32 hexadecimal digits (stored in lowercase).
    pub md5: Option<String>,
    /// The MIME type (at most 255 characters).
    pub mime_type: Option<String>,
    /// Whether the sensor can supply the contents; absent: NO_FILE_AVAILABLE.
    pub availability: Option<FileAvailability>,
}

/// The result of `ingestDetections`.
#[derive(SimpleObject)]
pub struct IngestDetectionsPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// How many detections were new and stored.
    pub accepted: i32,
    /// How many were known already (same externalId and source) and skipped.
    pub duplicates: i32,
    /// One detection per distinct externalId and source of the input, in input order.
    pub detections: Vec<Detection>,
    /// Automatic cases created or extended for high-risk detections.
    pub auto_cases: Vec<Case>,
}

impl From<DetectionInput> for DetectionDraft {
    fn from(d: DetectionInput) -> Self {
        DetectionDraft {
            external_id: d.external_id,
            source: d.source,
            rule_name: d.rule_name,
            description: d.description,
            observed_at: d.observed_at,
            risk_score: d.risk_score,
            risk_indicators: d
                .risk_indicators
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.name, r.weight))
                .collect(),
            device: d.device.map(|v| DeviceDraft {
                id: v.id,
                hostname: v.hostname,
                device_type: v.device_type,
                ip: v.ip,
            }),
            actor: d.actor,
            mitre: d
                .mitre
                .unwrap_or_default()
                .into_iter()
                .map(|m| [m.tactic_id, m.tactic_name, m.technique_id, m.technique_name])
                .collect(),
            file: d.file.map(|f| FileDraft {
                name: f.name,
                path: f.path,
                size: f.size,
                sha256: f.sha256,
                md5: f.md5,
                mime_type: f.mime_type,
                availability: f.availability,
            }),
            raw: d.raw.map(|j| j.0),
        }
    }
}

#[derive(Default)]
pub struct DetectionMutation;

#[Object]
impl DetectionMutation {
    /// Stores detections (at most 1,000 per call; idempotent on externalId and source).
    /// When one is invalid, none are stored. High-risk new detections go into automatic
    /// cases as the tenant's policy says. ADMIN, ANALYST and INGEST. Errors: `FORBIDDEN`,
    /// `VALIDATION_FAILED` (its `field` names the detection and its field).
    async fn ingest_detections(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The detections to store.")] input: IngestDetectionsInput,
    ) -> async_graphql::Result<IngestDetectionsPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let drafts = input.detections.into_iter().map(DetectionDraft::from).collect();
        let mut conn = own_conn(ctx).await?;
        let outcome = ingest::ingest(&mut conn, viewer, drafts).await?;
        Ok(IngestDetectionsPayload {
            client_mutation_id: input.client_mutation_id,
            accepted: i32::try_from(outcome.accepted).unwrap_or(i32::MAX),
            duplicates: i32::try_from(outcome.duplicates).unwrap_or(i32::MAX),
            detections: outcome.detections.into_iter().map(Detection).collect(),
            auto_cases: outcome.auto_cases.into_iter().map(Case).collect(),
        })
    }
}
