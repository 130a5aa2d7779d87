//! Builders for the domain's fixtures, all through the public API: detections to
//! ingest, cases, subjects, and small readers for error codes.

use serde_json::{Value, json};

use super::TestApp;

/// The fields of `Case` most tests read back.
pub const CASE_FIELDS: &str = "id number kind name description findings severity status resolution \
     autoCreated version detectionCount createdAt updatedAt resolvedAt archiveAt archivedAt deleteAt \
     assignee { id } subject { id username } createdBy { id } lastModifiedBy { id } \
     riskSummary { critical high medium low informational highest }";

/// A detection input: an XDR detection with this external id and risk score.
pub fn detection(external_id: &str, risk_score: i32) -> Value {
    json!({
        "externalId": external_id,
        "source": "XDR",
        "ruleName": "Suspicious PowerShell",
        "observedAt": "2026-11-20T10:00:00Z",
        "riskScore": risk_score,
        "device": { "hostname": "laptop-1", "ip": "10.0.0.5" },
        "actor": "alice@example.test",
    })
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// The `extensions.field` of the first error, if any.
pub fn error_field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

impl TestApp {
    /// Runs `mutation { <name>(input: $input) { <selection> } }` and returns the whole body.
    pub async fn mutate(&self, token: &str, name: &str, input: Value, selection: &str) -> Value {
        let query = format!(
            "mutation($input: {}Input!) {{ {name}(input: $input) {{ {selection} }} }}",
            input_type(name)
        );
        let (status, body) = self.graphql(token, &query, json!({ "input": input })).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Ingests detections and returns their global ids, in input order (fails the test on errors).
    pub async fn ingest(&self, token: &str, detections: Vec<Value>) -> Vec<String> {
        let body = self
            .mutate(
                token,
                "ingestDetections",
                json!({ "detections": detections }),
                "accepted duplicates detections { id }",
            )
            .await;
        assert!(body.get("errors").is_none(), "ingest failed: {body}");
        body["data"]["ingestDetections"]["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .map(|d| d["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Creates a case as `token` and returns it with [`CASE_FIELDS`] (fails the test on errors).
    pub async fn create_case(&self, token: &str, input: Value) -> Value {
        let body =
            self.mutate(token, "createCase", input, &format!("case {{ {CASE_FIELDS} }}")).await;
        assert!(body.get("errors").is_none(), "createCase failed: {body}");
        body["data"]["createCase"]["case"].clone()
    }

    /// A self-managed case named `name`, created by the bootstrap admin.
    pub async fn case_named(&self, name: &str) -> Value {
        self.create_case(&self.admin_token.clone(), json!({ "name": name })).await
    }

    /// The case with this global id, read back as the admin with [`CASE_FIELDS`].
    pub async fn read_case(&self, id: &str) -> Value {
        let (status, body) = self
            .graphql(
                &self.admin_token,
                &format!("query($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}"),
                json!({ "id": id }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["case"].clone()
    }
}

/// `createCase` → `CreateCase`, the prefix of its input type.
fn input_type(mutation: &str) -> String {
    let special = match mutation {
        "archiveCase" => Some("CaseRef"),
        "addDetectionsToCase" | "removeDetectionsFromCase" => Some("CaseDetections"),
        _ => None,
    };
    if let Some(name) = special {
        return name.to_owned();
    }
    let mut chars = mutation.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or_default();
    format!("{first}{}", chars.as_str())
}
