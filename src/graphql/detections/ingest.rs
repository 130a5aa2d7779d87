//! `ingestDetections`: sensors and integrations report detections.

use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::db::{DbPool, pool};
use crate::domain::ingest::{self, DetectionDraft, DeviceDraft, FileDraft};
use crate::graphql::cases::Case;
use crate::graphql::detections::Detection;
use crate::graphql::viewer_and_loaders;
use crate::models::enums::{DetectionSource, FileAvailability};

#[derive(InputObject)]
pub struct IngestDetectionsInput {
    pub client_mutation_id: Option<String>,
    /// At most 1,000.
    pub detections: Vec<DetectionInput>,
}

#[derive(InputObject)]
pub struct DetectionInput {
    /// The sensor's id: ingesting the same externalId and source again is a no-op.
    pub external_id: String,
    pub source: DetectionSource,
    pub rule_name: String,
    pub description: Option<String>,
    pub observed_at: DateTime<Utc>,
    /// 0 or more.
    pub risk_score: i32,
    pub risk_indicators: Option<Vec<RiskIndicatorInput>>,
    pub device: Option<DeviceInput>,
    pub actor: Option<String>,
    pub mitre: Option<Vec<MitreTechniqueInput>>,
    pub file: Option<FileInfoInput>,
    /// The original JSON, at most 64 KiB.
    pub raw: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct RiskIndicatorInput {
    pub name: String,
    pub weight: i32,
}

#[derive(InputObject)]
pub struct DeviceInput {
    pub id: Option<String>,
    pub hostname: String,
    #[graphql(name = "type")]
    pub device_type: Option<String>,
    pub ip: Option<String>,
}

#[derive(InputObject)]
pub struct MitreTechniqueInput {
    pub tactic_id: String,
    pub tactic_name: String,
    pub technique_id: String,
    pub technique_name: String,
}

#[derive(InputObject)]
pub struct FileInfoInput {
    pub name: String,
    pub path: Option<String>,
    pub size: Option<f64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub mime_type: Option<String>,
    pub availability: Option<FileAvailability>,
}

#[derive(SimpleObject)]
pub struct IngestDetectionsPayload {
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
    /// When one is invalid, none are stored.
    async fn ingest_detections(
        &self,
        ctx: &Context<'_>,
        input: IngestDetectionsInput,
    ) -> async_graphql::Result<IngestDetectionsPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let drafts = input.detections.into_iter().map(DetectionDraft::from).collect();
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
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
