-- 1. One case-folding rule. Every comparison that ignores case reads a key column that
-- casefile writes from Rust on every insert and update (models::fold: NFC of the full
-- Unicode case folding). SQL's lower() depends on the server's locale (ASCII only under
-- "C"), so it no longer decides anything. The keys below start as lower(value), which
-- equals the fold for ASCII text only; the migration runner re-keys every row with the
-- Rust fold in the same transaction, right after this migration (models::rekey).

ALTER TABLE tenants ADD COLUMN name_key text COLLATE "C";
UPDATE tenants SET name_key = lower(name);
ALTER TABLE tenants ALTER COLUMN name_key SET NOT NULL;
DROP INDEX tenants_name_key;
CREATE UNIQUE INDEX tenants_name_key ON tenants (name_key);

ALTER TABLE users ADD COLUMN email_key text COLLATE "C";
UPDATE users SET email_key = lower(email);
ALTER TABLE users ALTER COLUMN email_key SET NOT NULL;
DROP INDEX users_tenant_email_key;
DROP INDEX users_tenant_email_order_idx;
-- Unique e-mails, lookups and the user list's order (e-mail key, then id).
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, email_key);

ALTER TABLE subjects
    ADD COLUMN username_key text COLLATE "C",
    ADD COLUMN department_key text COLLATE "C";
UPDATE subjects SET username_key = lower(username), department_key = lower(department);
ALTER TABLE subjects ALTER COLUMN username_key SET NOT NULL;
DROP INDEX subjects_tenant_username_key;
-- Unique usernames, lookups by username and the list order (username key, then id).
CREATE UNIQUE INDEX subjects_tenant_username_key ON subjects (tenant_id, username_key);

ALTER TABLE detections
    ADD COLUMN rule_name_key text COLLATE "C",
    ADD COLUMN device_hostname_key text COLLATE "C",
    ADD COLUMN actor_key text COLLATE "C";
UPDATE detections SET rule_name_key = lower(rule_name),
    device_hostname_key = lower(device_hostname), actor_key = lower(actor);
ALTER TABLE detections ALTER COLUMN rule_name_key SET NOT NULL;
DROP INDEX detections_tenant_rule_idx;
DROP INDEX detections_tenant_actor_idx;
DROP INDEX detections_tenant_hostname_idx;
CREATE INDEX detections_tenant_rule_idx ON detections (tenant_id, rule_name_key, id);
CREATE INDEX detections_tenant_actor_idx ON detections (tenant_id, actor_key, observed_at);
CREATE INDEX detections_tenant_hostname_idx ON detections (tenant_id, device_hostname_key);

-- The case name's key was generated from lower(name): it becomes a plain column
-- (keeping its values), written by casefile like the others.
ALTER TABLE cases ALTER COLUMN name_key DROP EXPRESSION;
DROP INDEX cases_tenant_name_key;
CREATE UNIQUE INDEX cases_tenant_name_key ON cases (tenant_id, name_key);
-- (cases_tenant_name_idx on (tenant_id, name_key, number) stays: the list order.)
-- assignee_sort and subject_sort keep their meaning (the assignee's display name and the
-- subject's username, folded); the re-key rewrites them with the Rust fold.

-- 2. One measure per limit: raw JSON is measured by casefile alone, as compact JSON bytes
-- (models::detections::RAW_MAX_BYTES); the jsonb text PostgreSQL would measure is longer
-- (it adds spaces), so valid payloads failed here.
ALTER TABLE detections DROP CONSTRAINT detections_raw_check;

-- 8. Tenant isolation held by the database: every reference carries the tenant, so a row
-- can only point at a row of its own tenant.
ALTER TABLE users ADD CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE subjects ADD CONSTRAINT subjects_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE detections ADD CONSTRAINT detections_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE cases ADD CONSTRAINT cases_tenant_id_id_key UNIQUE (tenant_id, id);

ALTER TABLE api_tokens
    DROP CONSTRAINT api_tokens_user_id_fkey,
    ADD CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id);
DROP INDEX api_tokens_user_id_idx;
DROP INDEX api_tokens_tenant_id_idx;
CREATE INDEX api_tokens_tenant_user_idx ON api_tokens (tenant_id, user_id);

ALTER TABLE cases
    DROP CONSTRAINT cases_assignee_id_fkey,
    DROP CONSTRAINT cases_subject_id_fkey,
    DROP CONSTRAINT cases_created_by_id_fkey,
    DROP CONSTRAINT cases_last_modified_by_id_fkey,
    ADD CONSTRAINT cases_assignee_id_fkey FOREIGN KEY (tenant_id, assignee_id)
        REFERENCES users (tenant_id, id),
    ADD CONSTRAINT cases_subject_id_fkey FOREIGN KEY (tenant_id, subject_id)
        REFERENCES subjects (tenant_id, id),
    ADD CONSTRAINT cases_created_by_id_fkey FOREIGN KEY (tenant_id, created_by_id)
        REFERENCES users (tenant_id, id),
    ADD CONSTRAINT cases_last_modified_by_id_fkey FOREIGN KEY (tenant_id, last_modified_by_id)
        REFERENCES users (tenant_id, id);
DROP INDEX cases_assignee_id_idx;
DROP INDEX cases_subject_id_idx;
DROP INDEX cases_created_by_id_idx;
DROP INDEX cases_last_modified_by_id_idx;
CREATE INDEX cases_tenant_assignee_id_idx ON cases (tenant_id, assignee_id);
CREATE INDEX cases_tenant_subject_id_idx ON cases (tenant_id, subject_id);
CREATE INDEX cases_tenant_created_by_id_idx ON cases (tenant_id, created_by_id);
CREATE INDEX cases_tenant_last_modified_by_id_idx ON cases (tenant_id, last_modified_by_id);

ALTER TABLE case_detections
    DROP CONSTRAINT case_detections_case_id_fkey,
    DROP CONSTRAINT case_detections_detection_id_fkey,
    ADD CONSTRAINT case_detections_case_id_fkey FOREIGN KEY (tenant_id, case_id)
        REFERENCES cases (tenant_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT case_detections_detection_id_fkey FOREIGN KEY (tenant_id, detection_id)
        REFERENCES detections (tenant_id, id) ON DELETE CASCADE;
DROP INDEX case_detections_tenant_id_idx;
-- (case_detections_detection_id_idx stays: retention looks links up by detection alone.)
CREATE INDEX case_detections_tenant_case_idx ON case_detections (tenant_id, case_id);
CREATE INDEX case_detections_tenant_detection_idx ON case_detections (tenant_id, detection_id);
