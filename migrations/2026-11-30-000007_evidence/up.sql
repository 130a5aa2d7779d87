-- Evidence file contents, legal hold, and the removals the retention jobs leave to the
-- sweeper.

-- One row per stored content of a tenant: the object `tenants/<tenant>/sha256/<sha256>`
-- in the object store. Stored once however many detections carry it.
CREATE TABLE evidence_contents (
    tenant_id  uuid        NOT NULL,
    sha256     text        NOT NULL,
    size       bigint      NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evidence_contents_pkey PRIMARY KEY (tenant_id, sha256),
    CONSTRAINT evidence_contents_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT evidence_contents_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT evidence_contents_size_check CHECK (size >= 0)
);

-- A detection's link to its stored content (same tenant, by the composite key);
-- `file_content_stored` becomes what the link says, so the two cannot disagree.
ALTER TABLE detections
    DROP COLUMN file_content_stored,
    ADD COLUMN content_sha256 text,
    ADD CONSTRAINT detections_content_fkey FOREIGN KEY (tenant_id, content_sha256)
        REFERENCES evidence_contents (tenant_id, sha256);
ALTER TABLE detections
    ADD COLUMN file_content_stored boolean GENERATED ALWAYS AS (content_sha256 IS NOT NULL) STORED;
CREATE INDEX detections_tenant_content_idx ON detections (tenant_id, content_sha256)
    WHERE content_sha256 IS NOT NULL;

-- Objects whose content row is gone (archive, delete) and that the object store still
-- holds: written in the transaction that dropped the content, removed after commit, and
-- retried by the sweeper until the store confirms. No foreign key: it outlives the rows.
CREATE TABLE evidence_removals (
    tenant_id        uuid        NOT NULL,
    sha256           text        NOT NULL,
    queued_at        timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    CONSTRAINT evidence_removals_pkey PRIMARY KEY (tenant_id, sha256)
);
CREATE INDEX evidence_removals_due_idx ON evidence_removals (next_attempt_at);

-- Legal hold: while `legal_hold_set_at` is set, a case is never archived or deleted.
ALTER TABLE cases
    ADD COLUMN legal_hold_reason text,
    ADD COLUMN legal_hold_set_by_id uuid,
    ADD COLUMN legal_hold_set_at timestamptz,
    ADD CONSTRAINT cases_legal_hold_set_by_id_fkey FOREIGN KEY (tenant_id, legal_hold_set_by_id)
        REFERENCES users (tenant_id, id),
    ADD CONSTRAINT cases_legal_hold_check
        CHECK ((legal_hold_reason IS NULL) = (legal_hold_set_at IS NULL));

-- The jobs' scans: cases due for archive, and for delete.
CREATE INDEX cases_archive_due_idx ON cases (archive_at) WHERE archived_at IS NULL;
CREATE INDEX cases_delete_due_idx ON cases (delete_at) WHERE delete_at IS NOT NULL;
