DROP INDEX cases_open_number_idx;
DROP INDEX cases_open_name_idx;
DROP INDEX cases_open_status_idx;
DROP INDEX cases_open_severity_idx;
DROP INDEX cases_open_assignee_sort_idx;
DROP INDEX cases_open_subject_sort_idx;
DROP INDEX cases_open_created_idx;
DROP INDEX cases_open_updated_idx;
DROP INDEX cases_open_archive_at_idx;
DROP INDEX cases_open_detection_count_idx;

CREATE INDEX case_detections_tenant_case_idx ON case_detections (tenant_id, case_id);
DROP INDEX case_detections_case_observed_idx;
DROP INDEX case_detections_case_ingested_idx;
DROP INDEX case_detections_case_risk_idx;
DROP INDEX case_detections_case_rule_idx;
ALTER TABLE case_detections
    DROP COLUMN observed_at,
    DROP COLUMN ingested_at,
    DROP COLUMN risk_score,
    DROP COLUMN rule_name_key;
