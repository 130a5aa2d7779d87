-- Messages on cases: immutable, oldest first. A message belongs to its case's tenant
-- (composite keys: it cannot point at another tenant's case or user); deleting a case
-- deletes its messages, and archiving deletes them explicitly (domain::cases::archive).
-- The body's 1–10,000 characters are checked in one place: domain::messages.
CREATE TABLE messages (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    case_id uuid NOT NULL,
    author_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT messages_case_id_fkey FOREIGN KEY (tenant_id, case_id)
        REFERENCES cases (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT messages_author_id_fkey FOREIGN KEY (tenant_id, author_id)
        REFERENCES users (tenant_id, id)
);

-- A case's messages in list order (oldest first, id breaking ties), both ways.
CREATE INDEX messages_tenant_case_created_idx ON messages (tenant_id, case_id, created_at, id);
CREATE INDEX messages_tenant_author_idx ON messages (tenant_id, author_id);
