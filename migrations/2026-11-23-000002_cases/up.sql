-- The core domain: tenant policies, subjects, detections, cases and the links between
-- cases and detections. Severities are stored as ranks (0 none, 1 INFORMATIONAL, 2 LOW,
-- 3 MEDIUM, 4 HIGH, 5 CRITICAL) so that they order and compare directly.

ALTER TABLE tenants
    ADD COLUMN archive_after_days integer NOT NULL DEFAULT 180,
    ADD COLUMN delete_resolved_after_days integer DEFAULT 30,
    ADD COLUMN auto_case_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN auto_case_min_severity smallint NOT NULL DEFAULT 4,
    -- The number the tenant's next case gets; numbers are never reused.
    ADD COLUMN next_case_number integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT tenants_archive_after_days_check CHECK (archive_after_days BETWEEN 90 AND 365),
    ADD CONSTRAINT tenants_delete_resolved_after_days_check
        CHECK (delete_resolved_after_days BETWEEN 1 AND 3650),
    ADD CONSTRAINT tenants_auto_case_min_severity_check CHECK (auto_case_min_severity BETWEEN 1 AND 5),
    ADD CONSTRAINT tenants_next_case_number_check CHECK (next_case_number >= 1);

CREATE TABLE subjects (
    id                uuid        NOT NULL,
    tenant_id         uuid        NOT NULL,
    username          text        NOT NULL,
    display_name      text,
    department        text,
    title             text,
    location          text,
    manager_username  text,
    departure_date    date,
    watchlists        text[]      NOT NULL DEFAULT '{}',
    notes             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subjects_pkey PRIMARY KEY (id),
    CONSTRAINT subjects_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT subjects_username_check CHECK (length(username) BETWEEN 3 AND 254),
    CONSTRAINT subjects_notes_check CHECK (length(notes) <= 10000)
);
-- Lookups by username and the list order (username, id).
CREATE UNIQUE INDEX subjects_tenant_username_key
    ON subjects (tenant_id, (lower(username) COLLATE "C"));
CREATE INDEX subjects_watchlists_idx ON subjects USING gin (watchlists);

CREATE TABLE detections (
    id                   uuid        NOT NULL,
    tenant_id            uuid        NOT NULL,
    external_id          text        NOT NULL,
    source               text        NOT NULL,
    rule_name            text        NOT NULL,
    description          text,
    observed_at          timestamptz NOT NULL,
    ingested_at          timestamptz NOT NULL DEFAULT now(),
    risk_score           integer     NOT NULL,
    severity             smallint    NOT NULL GENERATED ALWAYS AS (
        CASE WHEN risk_score <= 0 THEN 1
             WHEN risk_score <= 3 THEN 2
             WHEN risk_score <= 6 THEN 3
             WHEN risk_score <= 8 THEN 4
             ELSE 5 END) STORED,
    risk_indicators      jsonb       NOT NULL DEFAULT '[]',
    device_id            text,
    device_hostname      text,
    device_type          text,
    device_ip            text,
    actor                text,
    mitre                jsonb       NOT NULL DEFAULT '[]',
    file_name            text,
    file_path            text,
    file_size            bigint,
    file_sha256          text,
    file_md5             text,
    file_mime_type       text,
    file_availability    text,
    file_content_stored  boolean     NOT NULL DEFAULT false,
    raw                  jsonb,
    CONSTRAINT detections_pkey PRIMARY KEY (id),
    CONSTRAINT detections_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT detections_source_check
        CHECK (source IN ('XDR', 'FILE_ACTIVITY', 'MDR', 'MANAGED_RISK')),
    CONSTRAINT detections_external_id_check CHECK (length(external_id) BETWEEN 1 AND 200),
    CONSTRAINT detections_rule_name_check CHECK (length(rule_name) BETWEEN 1 AND 200),
    CONSTRAINT detections_risk_score_check CHECK (risk_score >= 0),
    CONSTRAINT detections_file_availability_check CHECK (file_availability IN
        ('EXACT_FILE_AVAILABLE', 'RECENT_FILE_AVAILABLE', 'NO_FILE_AVAILABLE', 'PENDING', 'ERROR')),
    CONSTRAINT detections_file_sha256_check CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT detections_file_md5_check CHECK (file_md5 ~ '^[0-9a-f]{32}$'),
    CONSTRAINT detections_raw_check CHECK (octet_length(raw::text) <= 65536)
);
-- Ingestion is idempotent on (source, external id) within a tenant.
CREATE UNIQUE INDEX detections_tenant_source_external_id_key
    ON detections (tenant_id, source, external_id);
-- One index per list order (ties broken by id).
CREATE INDEX detections_tenant_observed_idx ON detections (tenant_id, observed_at, id);
CREATE INDEX detections_tenant_ingested_idx ON detections (tenant_id, ingested_at, id);
CREATE INDEX detections_tenant_risk_idx ON detections (tenant_id, risk_score, id);
CREATE INDEX detections_tenant_rule_idx ON detections (tenant_id, (lower(rule_name) COLLATE "C"), id);
-- A subject's recent activity, and the filters that name one value.
CREATE INDEX detections_tenant_actor_idx ON detections (tenant_id, lower(actor), observed_at);
CREATE INDEX detections_tenant_sha256_idx ON detections (tenant_id, file_sha256)
    WHERE file_sha256 IS NOT NULL;
CREATE INDEX detections_tenant_hostname_idx ON detections (tenant_id, lower(device_hostname));

CREATE TABLE cases (
    id                   uuid        NOT NULL,
    tenant_id            uuid        NOT NULL,
    number               integer     NOT NULL,
    kind                 text        NOT NULL,
    name                 text        NOT NULL,
    -- The name's sort key.
    name_key             text        COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    description          text,
    findings             text,
    severity             smallint    NOT NULL DEFAULT 0,
    status               text        NOT NULL,
    status_rank          smallint    NOT NULL GENERATED ALWAYS AS (
        CASE status WHEN 'NEW' THEN 0 WHEN 'INVESTIGATING' THEN 1 WHEN 'ON_HOLD' THEN 2
                    WHEN 'ACTION_REQUIRED' THEN 3 WHEN 'RESOLVED' THEN 4 ELSE 5 END) STORED,
    resolution           text,
    auto_created         boolean     NOT NULL DEFAULT false,
    -- What an automatic case groups by: the rule and the device's hostname ('' for none).
    auto_rule_name       text,
    auto_device          text,
    assignee_id          uuid,
    -- Sort keys kept with the row so every list order is an index scan:
    -- the assignee's display name and the subject's username, lower case, '' for none.
    assignee_sort        text        COLLATE "C" NOT NULL DEFAULT '',
    subject_id           uuid,
    subject_sort         text        COLLATE "C" NOT NULL DEFAULT '',
    created_by_id        uuid,
    last_modified_by_id  uuid,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    resolved_at          timestamptz,
    archive_at           timestamptz NOT NULL,
    archived_at          timestamptz,
    delete_at            timestamptz,
    version              integer     NOT NULL DEFAULT 1,
    -- Per-case aggregates of the linked detections, kept in the transaction that links.
    detection_count      integer     NOT NULL DEFAULT 0,
    risk_critical        integer     NOT NULL DEFAULT 0,
    risk_high            integer     NOT NULL DEFAULT 0,
    risk_medium          integer     NOT NULL DEFAULT 0,
    risk_low             integer     NOT NULL DEFAULT 0,
    risk_informational   integer     NOT NULL DEFAULT 0,
    search               tsvector    NOT NULL GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig,
            name || ' ' || coalesce(description, '') || ' '
            || regexp_replace(coalesce(findings, ''), '<[^>]*>', ' ', 'g'))) STORED,
    CONSTRAINT cases_pkey PRIMARY KEY (id),
    CONSTRAINT cases_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT cases_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES users (id),
    CONSTRAINT cases_subject_id_fkey FOREIGN KEY (subject_id) REFERENCES subjects (id),
    CONSTRAINT cases_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES users (id),
    CONSTRAINT cases_last_modified_by_id_fkey FOREIGN KEY (last_modified_by_id) REFERENCES users (id),
    CONSTRAINT cases_tenant_number_key UNIQUE (tenant_id, number),
    CONSTRAINT cases_kind_check CHECK (kind IN
        ('SELF_MANAGED', 'MDR_SERVICE_REQUEST', 'MANAGED_RISK_SERVICE_REQUEST')),
    CONSTRAINT cases_name_check CHECK (char_length(name) BETWEEN 1 AND 50 AND name = btrim(name)),
    CONSTRAINT cases_description_check CHECK (char_length(description) <= 1000),
    CONSTRAINT cases_findings_check CHECK (char_length(findings) <= 30000),
    CONSTRAINT cases_severity_check CHECK (severity BETWEEN 0 AND 5),
    CONSTRAINT cases_status_check CHECK (status IN
        ('NEW', 'INVESTIGATING', 'ON_HOLD', 'ACTION_REQUIRED', 'RESOLVED', 'ARCHIVED')),
    CONSTRAINT cases_resolution_check CHECK (resolution IN ('CONFIRMED_INCIDENT', 'THREAT_MITIGATED',
        'AUTHORIZED_ACTIVITY', 'FALSE_POSITIVE', 'NOT_VULNERABLE', 'INCONCLUSIVE')),
    CONSTRAINT cases_version_check CHECK (version >= 1),
    CONSTRAINT cases_detection_count_check CHECK (detection_count BETWEEN 0 AND 10000)
);
CREATE UNIQUE INDEX cases_tenant_name_key ON cases (tenant_id, lower(name));
-- One index per list order; ties are broken by the case number. Text orders use the "C"
-- collation: the same order on every server, whatever its locale.
CREATE INDEX cases_tenant_name_idx ON cases (tenant_id, name_key, number);
CREATE INDEX cases_tenant_status_idx ON cases (tenant_id, status_rank, number);
CREATE INDEX cases_tenant_severity_idx ON cases (tenant_id, severity, number);
CREATE INDEX cases_tenant_assignee_sort_idx ON cases (tenant_id, assignee_sort, number);
CREATE INDEX cases_tenant_subject_sort_idx ON cases (tenant_id, subject_sort, number);
CREATE INDEX cases_tenant_created_idx ON cases (tenant_id, created_at, number);
CREATE INDEX cases_tenant_updated_idx ON cases (tenant_id, updated_at, number);
CREATE INDEX cases_tenant_archive_at_idx ON cases (tenant_id, archive_at, number);
CREATE INDEX cases_tenant_detection_count_idx ON cases (tenant_id, detection_count, number);
-- Foreign keys.
CREATE INDEX cases_assignee_id_idx ON cases (assignee_id);
CREATE INDEX cases_subject_id_idx ON cases (subject_id);
CREATE INDEX cases_created_by_id_idx ON cases (created_by_id);
CREATE INDEX cases_last_modified_by_id_idx ON cases (last_modified_by_id);
-- Words in name, description or findings.
CREATE INDEX cases_search_idx ON cases USING gin (search);
-- The open automatic case of a rule and device.
CREATE INDEX cases_auto_idx ON cases (tenant_id, auto_rule_name, auto_device, created_at)
    WHERE auto_created;

CREATE TABLE case_detections (
    case_id       uuid        NOT NULL,
    detection_id  uuid        NOT NULL,
    tenant_id     uuid        NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT case_detections_pkey PRIMARY KEY (case_id, detection_id),
    CONSTRAINT case_detections_case_id_fkey FOREIGN KEY (case_id) REFERENCES cases (id)
        ON DELETE CASCADE,
    CONSTRAINT case_detections_detection_id_fkey FOREIGN KEY (detection_id) REFERENCES detections (id)
        ON DELETE CASCADE,
    CONSTRAINT case_detections_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX case_detections_detection_id_idx ON case_detections (detection_id);
CREATE INDEX case_detections_tenant_id_idx ON case_detections (tenant_id);

-- The user list's order (e-mail, then id).
CREATE INDEX users_tenant_email_order_idx ON users (tenant_id, (lower(email) COLLATE "C"), id);
