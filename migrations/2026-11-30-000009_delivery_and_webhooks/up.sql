-- Delivery of the change record to the outside (webhooks, mail): one durable cursor per
-- (tenant, channel). A channel is `<kind>` or `<kind>:<key>` (`mail`, `webhook:<uuid>`);
-- `sequence` is the last event of the tenant's log the channel has handled. A server
-- takes a channel with a lease (`leased_by`, `leased_until`, claimed with
-- FOR UPDATE SKIP LOCKED), so with several servers each channel is worked by one at a
-- time; `attempts` counts the failures in a row of the event after the cursor.
CREATE TABLE delivery_cursors (
    tenant_id       uuid        NOT NULL,
    channel         text        NOT NULL,
    sequence        bigint      NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    paused_at       timestamptz,
    leased_by       uuid,
    leased_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT delivery_cursors_pkey PRIMARY KEY (tenant_id, channel),
    CONSTRAINT delivery_cursors_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT delivery_cursors_channel_check CHECK (length(channel) BETWEEN 1 AND 200),
    CONSTRAINT delivery_cursors_sequence_check CHECK (sequence >= 0),
    CONSTRAINT delivery_cursors_attempts_check CHECK (attempts >= 0)
);

-- The worker's question "which channels are due": not paused, by their next attempt.
CREATE INDEX delivery_cursors_due_idx ON delivery_cursors (next_attempt_at)
    WHERE paused_at IS NULL;

-- Webhook endpoints of a tenant. The secret is kept as given (it signs every delivery)
-- and never shown by the API. `event_kinds` empty: every case event kind.
CREATE TABLE webhooks (
    id              uuid        NOT NULL,
    tenant_id       uuid        NOT NULL,
    url             text        NOT NULL,
    event_kinds     text[]      NOT NULL DEFAULT ARRAY[]::text[],
    secret          text        NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT webhooks_pkey PRIMARY KEY (id),
    CONSTRAINT webhooks_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT webhooks_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT webhooks_url_check CHECK (length(url) BETWEEN 1 AND 2048),
    CONSTRAINT webhooks_secret_check CHECK (length(secret) BETWEEN 1 AND 1024)
);

-- A tenant's webhooks in list order (oldest first).
CREATE INDEX webhooks_tenant_created_idx ON webhooks (tenant_id, created_at, id);

-- The delivery log: one row per (webhook, event), made at the first attempt; its id is
-- the `X-Casefile-Delivery` header, the same on every repeat.
CREATE TABLE webhook_deliveries (
    id               uuid        NOT NULL,
    tenant_id        uuid        NOT NULL,
    webhook_id       uuid        NOT NULL,
    event_sequence   bigint      NOT NULL,
    kind             text        NOT NULL,
    status           text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_deliveries_webhook_event_key UNIQUE (webhook_id, event_sequence),
    CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (tenant_id, webhook_id)
        REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED'))
);

-- Backs the composite foreign key; also the log's order (newest event first).
CREATE INDEX webhook_deliveries_tenant_webhook_idx
    ON webhook_deliveries (tenant_id, webhook_id, event_sequence);
