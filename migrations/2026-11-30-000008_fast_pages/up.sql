-- Fast pages (issue 10).
--
-- 1. A case's detection page is an index range scan that stops after the page, in every
-- order: each link carries its detection's sort keys (which never change after ingest;
-- the rule's key changes only when a re-key rewrites it, and the re-key rewrites the
-- links' copy too), under one index per order led by the case. Links are written by
-- models::links::add only, which copies the keys from the detection in the statement that
-- inserts the link (INSERT ... SELECT).
ALTER TABLE case_detections
    ADD COLUMN observed_at timestamptz,
    ADD COLUMN ingested_at timestamptz,
    ADD COLUMN risk_score integer,
    ADD COLUMN rule_name_key text COLLATE "C";
UPDATE case_detections cd
SET observed_at = d.observed_at, ingested_at = d.ingested_at, risk_score = d.risk_score,
    rule_name_key = d.rule_name_key
FROM detections d
WHERE d.tenant_id = cd.tenant_id AND d.id = cd.detection_id;
ALTER TABLE case_detections
    ALTER COLUMN observed_at SET NOT NULL,
    ALTER COLUMN ingested_at SET NOT NULL,
    ALTER COLUMN risk_score SET NOT NULL,
    ALTER COLUMN rule_name_key SET NOT NULL;
CREATE INDEX case_detections_case_observed_idx
    ON case_detections (case_id, observed_at, detection_id);
CREATE INDEX case_detections_case_ingested_idx
    ON case_detections (case_id, ingested_at, detection_id);
CREATE INDEX case_detections_case_risk_idx
    ON case_detections (case_id, risk_score, detection_id);
CREATE INDEX case_detections_case_rule_idx
    ON case_detections (case_id, rule_name_key, detection_id);
-- (case_detections_tenant_case_idx on (tenant_id, case_id) is covered by the primary key
-- and the indexes above for every lookup by case.)
DROP INDEX case_detections_tenant_case_idx;

-- 2. The case list's default filter (the open statuses, status_rank < 4) stays an index
-- scan however many cases are closed: one partial index per list order, holding the open
-- cases only. The list writes that filter as the literal `status_rank < 4`, which is
-- what lets the planner use these indexes (and count from them).
CREATE INDEX cases_open_number_idx ON cases (tenant_id, number) WHERE status_rank < 4;
CREATE INDEX cases_open_name_idx ON cases (tenant_id, name_key, number) WHERE status_rank < 4;
CREATE INDEX cases_open_status_idx ON cases (tenant_id, status_rank, number) WHERE status_rank < 4;
CREATE INDEX cases_open_severity_idx ON cases (tenant_id, severity, number) WHERE status_rank < 4;
CREATE INDEX cases_open_assignee_sort_idx
    ON cases (tenant_id, assignee_sort, number) WHERE status_rank < 4;
CREATE INDEX cases_open_subject_sort_idx
    ON cases (tenant_id, subject_sort, number) WHERE status_rank < 4;
CREATE INDEX cases_open_created_idx ON cases (tenant_id, created_at, number) WHERE status_rank < 4;
CREATE INDEX cases_open_updated_idx ON cases (tenant_id, updated_at, number) WHERE status_rank < 4;
CREATE INDEX cases_open_archive_at_idx
    ON cases (tenant_id, archive_at, number) WHERE status_rank < 4;
CREATE INDEX cases_open_detection_count_idx
    ON cases (tenant_id, detection_count, number) WHERE status_rank < 4;
