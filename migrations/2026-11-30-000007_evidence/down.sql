DROP INDEX cases_delete_due_idx;
DROP INDEX cases_archive_due_idx;
ALTER TABLE cases
    DROP CONSTRAINT cases_legal_hold_check,
    DROP CONSTRAINT cases_legal_hold_set_by_id_fkey,
    DROP COLUMN legal_hold_set_at,
    DROP COLUMN legal_hold_set_by_id,
    DROP COLUMN legal_hold_reason;
DROP TABLE evidence_removals;
ALTER TABLE detections DROP COLUMN file_content_stored;
DROP INDEX detections_tenant_content_idx;
ALTER TABLE detections
    DROP CONSTRAINT detections_content_fkey,
    DROP COLUMN content_sha256,
    ADD COLUMN file_content_stored boolean NOT NULL DEFAULT false;
DROP TABLE evidence_contents;
