-- 8.
DROP INDEX case_detections_tenant_detection_idx;
DROP INDEX case_detections_tenant_case_idx;
CREATE INDEX case_detections_tenant_id_idx ON case_detections (tenant_id);
ALTER TABLE case_detections
    DROP CONSTRAINT case_detections_case_id_fkey,
    DROP CONSTRAINT case_detections_detection_id_fkey,
    ADD CONSTRAINT case_detections_case_id_fkey FOREIGN KEY (case_id) REFERENCES cases (id)
        ON DELETE CASCADE,
    ADD CONSTRAINT case_detections_detection_id_fkey FOREIGN KEY (detection_id)
        REFERENCES detections (id) ON DELETE CASCADE;

DROP INDEX cases_tenant_assignee_id_idx;
DROP INDEX cases_tenant_subject_id_idx;
DROP INDEX cases_tenant_created_by_id_idx;
DROP INDEX cases_tenant_last_modified_by_id_idx;
CREATE INDEX cases_assignee_id_idx ON cases (assignee_id);
CREATE INDEX cases_subject_id_idx ON cases (subject_id);
CREATE INDEX cases_created_by_id_idx ON cases (created_by_id);
CREATE INDEX cases_last_modified_by_id_idx ON cases (last_modified_by_id);
ALTER TABLE cases
    DROP CONSTRAINT cases_assignee_id_fkey,
    DROP CONSTRAINT cases_subject_id_fkey,
    DROP CONSTRAINT cases_created_by_id_fkey,
    DROP CONSTRAINT cases_last_modified_by_id_fkey,
    ADD CONSTRAINT cases_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES users (id),
    ADD CONSTRAINT cases_subject_id_fkey FOREIGN KEY (subject_id) REFERENCES subjects (id),
    ADD CONSTRAINT cases_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES users (id),
    ADD CONSTRAINT cases_last_modified_by_id_fkey FOREIGN KEY (last_modified_by_id)
        REFERENCES users (id);

DROP INDEX api_tokens_tenant_user_idx;
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant_id_idx ON api_tokens (tenant_id);
ALTER TABLE api_tokens
    DROP CONSTRAINT api_tokens_user_id_fkey,
    ADD CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);

ALTER TABLE cases DROP CONSTRAINT cases_tenant_id_id_key;
ALTER TABLE detections DROP CONSTRAINT detections_tenant_id_id_key;
ALTER TABLE subjects DROP CONSTRAINT subjects_tenant_id_id_key;
ALTER TABLE users DROP CONSTRAINT users_tenant_id_id_key;

-- 2.
ALTER TABLE detections
    ADD CONSTRAINT detections_raw_check CHECK (octet_length(raw::text) <= 65536) NOT VALID;

-- 1. (lower() again: names that differ only in non-ASCII case may clash here.)
DROP INDEX cases_tenant_name_key;
ALTER TABLE cases DROP COLUMN name_key;
ALTER TABLE cases ADD COLUMN name_key text COLLATE "C" NOT NULL
    GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX cases_tenant_name_idx ON cases (tenant_id, name_key, number);
CREATE UNIQUE INDEX cases_tenant_name_key ON cases (tenant_id, lower(name));

DROP INDEX detections_tenant_rule_idx;
DROP INDEX detections_tenant_actor_idx;
DROP INDEX detections_tenant_hostname_idx;
ALTER TABLE detections
    DROP COLUMN rule_name_key,
    DROP COLUMN device_hostname_key,
    DROP COLUMN actor_key;
CREATE INDEX detections_tenant_rule_idx ON detections (tenant_id, (lower(rule_name) COLLATE "C"), id);
CREATE INDEX detections_tenant_actor_idx ON detections (tenant_id, lower(actor), observed_at);
CREATE INDEX detections_tenant_hostname_idx ON detections (tenant_id, lower(device_hostname));

DROP INDEX subjects_tenant_username_key;
ALTER TABLE subjects DROP COLUMN username_key, DROP COLUMN department_key;
CREATE UNIQUE INDEX subjects_tenant_username_key
    ON subjects (tenant_id, (lower(username) COLLATE "C"));

DROP INDEX users_tenant_email_key;
ALTER TABLE users DROP COLUMN email_key;
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
CREATE INDEX users_tenant_email_order_idx ON users (tenant_id, (lower(email) COLLATE "C"), id);

DROP INDEX tenants_name_key;
ALTER TABLE tenants DROP COLUMN name_key;
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));
