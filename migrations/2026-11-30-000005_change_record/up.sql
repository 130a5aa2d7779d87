-- One record of every change: a per-tenant, hash-chained log of events written in the
-- transaction of the change, and a head row per tenant (last sequence, last hash) whose
-- lock serializes a tenant's appends. See src/models/events.rs for the hash encoding.
CREATE TABLE audit_events (
    tenant_id        uuid        NOT NULL,
    sequence         bigint      NOT NULL,
    id               uuid        NOT NULL,
    at               timestamptz NOT NULL,
    actor_id         uuid,
    actor_type       text        NOT NULL,
    request_id       text,
    client_address   text,
    action           text        NOT NULL,
    -- No foreign key: events outlive the cases they tell of.
    case_id          uuid,
    case_number      integer,
    case_event_kind  text,
    target_id        text,
    changes          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    previous_hash    text        NOT NULL,
    hash             text        NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, sequence),
    CONSTRAINT audit_events_id_key UNIQUE (id),
    CONSTRAINT audit_events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT audit_events_sequence_check CHECK (sequence >= 1),
    CONSTRAINT audit_events_actor_type_check CHECK (actor_type IN ('USER', 'API_CLIENT', 'SYSTEM')),
    CONSTRAINT audit_events_case_event_kind_check CHECK (case_event_kind IN (
        'CREATED', 'UPDATED', 'STATUS_CHANGED', 'DETECTIONS_ADDED', 'DETECTIONS_REMOVED',
        'SUBJECT_CHANGED', 'MESSAGE_POSTED', 'ARCHIVED', 'DELETED')),
    CONSTRAINT audit_events_action_check CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    CONSTRAINT audit_events_changes_check CHECK (jsonb_typeof(changes) = 'object')
);
-- A case's activity, newest first, and the case filter of auditEvents.
CREATE INDEX audit_events_case_idx ON audit_events (tenant_id, case_id, sequence)
    WHERE case_id IS NOT NULL;
CREATE INDEX audit_events_case_number_idx ON audit_events (tenant_id, case_number, sequence)
    WHERE case_number IS NOT NULL;
-- The time filter of auditEvents and the export.
CREATE INDEX audit_events_at_idx ON audit_events (tenant_id, at);
CREATE INDEX audit_events_actor_idx ON audit_events (tenant_id, actor_id, sequence)
    WHERE actor_id IS NOT NULL;

CREATE TABLE audit_heads (
    tenant_id      uuid   NOT NULL,
    last_sequence  bigint NOT NULL DEFAULT 0,
    last_hash      text   NOT NULL
        DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    CONSTRAINT audit_heads_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT audit_heads_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

INSERT INTO audit_heads (tenant_id) SELECT id FROM tenants;

-- Every new tenant gets its head row in the transaction that creates it, whoever inserts it.
CREATE FUNCTION audit_heads_for_new_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (tenant_id) VALUES (NEW.id);
    RETURN NEW;
END;
$$;
CREATE TRIGGER tenants_audit_head AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION audit_heads_for_new_tenant();
