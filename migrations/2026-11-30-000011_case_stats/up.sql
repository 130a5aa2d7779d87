-- Dashboard statistics (issue 12, `caseStats`): small per-tenant, per-UTC-day aggregates
-- that the database keeps in the transaction of every write, whoever writes (GraphQL
-- mutations, NDJSON and GraphQL ingest, automatic cases, the seed's multi-row inserts,
-- the jobs), so a dashboard reads at most a few hundred rows per window, never the cases
-- or detections themselves.
--
-- The statistics count what happened: deleting a case or a detection later (by hand or
-- by retention) does not take it out of the days it was created, resolved or ingested
-- in, as it does not take it out of the change record. A row's contribution is a
-- function of its columns (created_at, first_assigned_at, resolved_at, resolution,
-- severity; ingested_at, rule_name, device), so an update that moves one of them (a
-- resolution, a first assignment, a fix by hand) moves the counts with it.

-- 1. When a case first got an assignee. Set by the database on every path that assigns
-- (a case created with an assignee: its creation time; a later assignment: the update's
-- updated_at), never cleared by unassigning and never moved by a later reassignment.
ALTER TABLE cases ADD COLUMN first_assigned_at timestamptz;
ALTER TABLE cases ADD CONSTRAINT cases_first_assigned_at_check
    CHECK (first_assigned_at >= created_at);

-- Backfill, as far as the data tells: the first event of the change record that set the
-- case's assignee (its creation or an update); for a case that has an assignee but no
-- such event (written before the change record, or by the seed), its creation time.
-- A case that was assigned and then unassigned before the change record stays unknown.
UPDATE cases c SET first_assigned_at = greatest(e.at, c.created_at)
FROM (
    SELECT tenant_id, case_id, min(at) AS at
    FROM audit_events
    WHERE case_id IS NOT NULL AND jsonb_typeof(changes -> 'assignee' -> 'after') = 'string'
    GROUP BY tenant_id, case_id
) e
WHERE e.tenant_id = c.tenant_id AND e.case_id = c.id;
UPDATE cases SET first_assigned_at = created_at
WHERE first_assigned_at IS NULL AND assignee_id IS NOT NULL;

CREATE FUNCTION cases_first_assigned_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.first_assigned_at := NEW.created_at;
    RETURN NEW;
END;
$$;
CREATE TRIGGER cases_first_assigned_on_insert BEFORE INSERT ON cases FOR EACH ROW
    WHEN (NEW.assignee_id IS NOT NULL AND NEW.first_assigned_at IS NULL)
    EXECUTE FUNCTION cases_first_assigned_on_insert();

CREATE FUNCTION cases_first_assigned_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_assigned_at IS NULL THEN
        NEW.first_assigned_at := OLD.first_assigned_at;
    END IF;
    IF NEW.first_assigned_at IS NULL AND NEW.assignee_id IS NOT NULL THEN
        NEW.first_assigned_at := CASE WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at
            THEN greatest(NEW.updated_at, NEW.created_at)
            ELSE greatest(now(), NEW.created_at) END;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER cases_first_assigned_on_update BEFORE UPDATE ON cases FOR EACH ROW
    WHEN (NEW.first_assigned_at IS NULL
          AND (NEW.assignee_id IS NOT NULL OR OLD.first_assigned_at IS NOT NULL))
    EXECUTE FUNCTION cases_first_assigned_on_update();

-- 2. The aggregates. Durations are summed in whole milliseconds (exact under the
-- additions and subtractions of the triggers; a bigint holds 290 million years of them).
CREATE FUNCTION stats_ms(interval) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(extract(epoch FROM $1) * 1000)::bigint;

-- Cases created on a UTC day, and those of them that got an assignee (with the sum of
-- their times from creation to first assignment).
CREATE TABLE case_created_days (
    tenant_id  uuid    NOT NULL,
    day        date    NOT NULL,
    created    integer NOT NULL DEFAULT 0,
    assigned   integer NOT NULL DEFAULT 0,
    assign_ms  bigint  NOT NULL DEFAULT 0,
    CONSTRAINT case_created_days_pkey PRIMARY KEY (tenant_id, day),
    CONSTRAINT case_created_days_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE
);

-- Cases resolved on a UTC day, by severity rank (0 none) and resolution, with the sum of
-- their times from creation to resolution.
CREATE TABLE case_resolved_days (
    tenant_id   uuid     NOT NULL,
    day         date     NOT NULL,
    severity    smallint NOT NULL,
    resolution  text     NOT NULL,
    resolved    integer  NOT NULL DEFAULT 0,
    resolve_ms  bigint   NOT NULL DEFAULT 0,
    CONSTRAINT case_resolved_days_pkey PRIMARY KEY (tenant_id, day, severity, resolution),
    CONSTRAINT case_resolved_days_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE
);

-- Detections ingested on a UTC day, by rule name and by device (its hostname, else its
-- id; detections without a device count for their rule only).
CREATE TABLE detection_days (
    tenant_id   uuid    NOT NULL,
    dimension   text    NOT NULL,
    day         date    NOT NULL,
    name        text    COLLATE "C" NOT NULL,
    detections  integer NOT NULL DEFAULT 0,
    CONSTRAINT detection_days_pkey PRIMARY KEY (tenant_id, dimension, day, name),
    CONSTRAINT detection_days_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE,
    CONSTRAINT detection_days_dimension_check CHECK (dimension IN ('RULE', 'DEVICE'))
);

-- The same per calendar month (`month` is its first day): a year's window reads twelve
-- months and the days of the two months it cuts, not 365 days of every device.
CREATE TABLE detection_months (
    tenant_id   uuid    NOT NULL,
    dimension   text    NOT NULL,
    month       date    NOT NULL,
    name        text    COLLATE "C" NOT NULL,
    detections  integer NOT NULL DEFAULT 0,
    CONSTRAINT detection_months_pkey PRIMARY KEY (tenant_id, dimension, month, name),
    CONSTRAINT detection_months_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE,
    CONSTRAINT detection_months_dimension_check CHECK (dimension IN ('RULE', 'DEVICE')),
    CONSTRAINT detection_months_month_check CHECK (extract(day FROM month) = 1)
);


CREATE FUNCTION case_stats_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_created_days AS t (tenant_id, day, created, assigned, assign_ms)
    SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, count(*), count(first_assigned_at),
           coalesce(sum(stats_ms(first_assigned_at - created_at)), 0)
    FROM new_cases
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (tenant_id, day) DO UPDATE SET
        created = t.created + EXCLUDED.created,
        assigned = t.assigned + EXCLUDED.assigned,
        assign_ms = t.assign_ms + EXCLUDED.assign_ms;
    INSERT INTO case_resolved_days AS t (tenant_id, day, severity, resolution, resolved, resolve_ms)
    SELECT tenant_id, (resolved_at AT TIME ZONE 'UTC')::date, severity, resolution, count(*),
           sum(stats_ms(resolved_at - created_at))
    FROM new_cases
    WHERE resolved_at IS NOT NULL AND resolution IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, day, severity, resolution) DO UPDATE SET
        resolved = t.resolved + EXCLUDED.resolved,
        resolve_ms = t.resolve_ms + EXCLUDED.resolve_ms;
    RETURN NULL;
END;
$$;

CREATE FUNCTION case_stats_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows whose contribution changed count: most updates (edits, links, versions)
    -- change none, and then no aggregate row is touched (or locked).
    WITH moved AS (
        SELECT o.tenant_id, o.created_at AS old_created, n.created_at AS new_created,
               o.first_assigned_at AS old_assigned, n.first_assigned_at AS new_assigned,
               CASE WHEN o.resolution IS NOT NULL THEN o.resolved_at END AS old_resolved,
               CASE WHEN n.resolution IS NOT NULL THEN n.resolved_at END AS new_resolved,
               o.resolution AS old_resolution, n.resolution AS new_resolution,
               o.severity AS old_severity, n.severity AS new_severity
        FROM old_cases o JOIN new_cases n ON n.id = o.id
        WHERE o.created_at IS DISTINCT FROM n.created_at
           OR o.first_assigned_at IS DISTINCT FROM n.first_assigned_at
           OR o.resolved_at IS DISTINCT FROM n.resolved_at
           OR o.resolution IS DISTINCT FROM n.resolution
           OR (n.resolved_at IS NOT NULL AND o.severity IS DISTINCT FROM n.severity)
    ), created AS (
        SELECT tenant_id, (old_created AT TIME ZONE 'UTC')::date AS day, -1 AS created,
               -(old_assigned IS NOT NULL)::int AS assigned,
               -coalesce(stats_ms(old_assigned - old_created), 0) AS assign_ms
        FROM moved
        UNION ALL
        SELECT tenant_id, (new_created AT TIME ZONE 'UTC')::date, 1,
               (new_assigned IS NOT NULL)::int, coalesce(stats_ms(new_assigned - new_created), 0)
        FROM moved
    ), created_sums AS (
        SELECT tenant_id, day, sum(created)::int AS created, sum(assigned)::int AS assigned,
               sum(assign_ms)::bigint AS assign_ms
        FROM created GROUP BY 1, 2
        HAVING sum(created) <> 0 OR sum(assigned) <> 0 OR sum(assign_ms) <> 0
    ), created_upsert AS (
        INSERT INTO case_created_days AS t (tenant_id, day, created, assigned, assign_ms)
        SELECT tenant_id, day, created, assigned, assign_ms FROM created_sums ORDER BY 1, 2
        ON CONFLICT (tenant_id, day) DO UPDATE SET
            created = t.created + EXCLUDED.created,
            assigned = t.assigned + EXCLUDED.assigned,
            assign_ms = t.assign_ms + EXCLUDED.assign_ms
        RETURNING 1
    ), resolved AS (
        SELECT tenant_id, (old_resolved AT TIME ZONE 'UTC')::date AS day, old_severity AS severity,
               old_resolution AS resolution, -1 AS resolved,
               -stats_ms(old_resolved - old_created) AS resolve_ms
        FROM moved WHERE old_resolved IS NOT NULL
        UNION ALL
        SELECT tenant_id, (new_resolved AT TIME ZONE 'UTC')::date, new_severity, new_resolution, 1,
               stats_ms(new_resolved - new_created)
        FROM moved WHERE new_resolved IS NOT NULL
    ), resolved_sums AS (
        SELECT tenant_id, day, severity, resolution, sum(resolved)::int AS resolved,
               sum(resolve_ms)::bigint AS resolve_ms
        FROM resolved GROUP BY 1, 2, 3, 4
        HAVING sum(resolved) <> 0 OR sum(resolve_ms) <> 0
    )
    INSERT INTO case_resolved_days AS t (tenant_id, day, severity, resolution, resolved, resolve_ms)
    SELECT tenant_id, day, severity, resolution, resolved, resolve_ms
    FROM resolved_sums ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, day, severity, resolution) DO UPDATE SET
        resolved = t.resolved + EXCLUDED.resolved,
        resolve_ms = t.resolve_ms + EXCLUDED.resolve_ms;
    RETURN NULL;
END;
$$;

CREATE TRIGGER case_stats_on_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_cases
    FOR EACH STATEMENT EXECUTE FUNCTION case_stats_on_insert();
CREATE TRIGGER case_stats_on_update AFTER UPDATE ON cases
    REFERENCING OLD TABLE AS old_cases NEW TABLE AS new_cases
    FOR EACH STATEMENT EXECUTE FUNCTION case_stats_on_update();

-- A detection counts for its rule and its device (hostname, else id) on the UTC day it
-- was ingested, and in that day's month. Days, then months, each in key order: writers
-- lock the aggregate rows they share in the same order.
CREATE FUNCTION detection_stats_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO detection_days AS t (tenant_id, dimension, day, name, detections)
    SELECT tenant_id, dimension, day, name, count(*)
    FROM (
        SELECT tenant_id, 'RULE' AS dimension, (ingested_at AT TIME ZONE 'UTC')::date AS day,
               rule_name AS name
        FROM new_detections
        UNION ALL
        SELECT tenant_id, 'DEVICE', (ingested_at AT TIME ZONE 'UTC')::date,
               coalesce(device_hostname, device_id)
        FROM new_detections
        WHERE coalesce(device_hostname, device_id) IS NOT NULL
    ) d
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, dimension, day, name) DO UPDATE SET
        detections = t.detections + EXCLUDED.detections;
    INSERT INTO detection_months AS t (tenant_id, dimension, month, name, detections)
    SELECT tenant_id, dimension, month, name, count(*)
    FROM (
        SELECT tenant_id, 'RULE' AS dimension,
               date_trunc('month', ingested_at AT TIME ZONE 'UTC')::date AS month,
               rule_name AS name
        FROM new_detections
        UNION ALL
        SELECT tenant_id, 'DEVICE', date_trunc('month', ingested_at AT TIME ZONE 'UTC')::date,
               coalesce(device_hostname, device_id)
        FROM new_detections
        WHERE coalesce(device_hostname, device_id) IS NOT NULL
    ) d
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, dimension, month, name) DO UPDATE SET
        detections = t.detections + EXCLUDED.detections;
    RETURN NULL;
END;
$$;

CREATE FUNCTION detection_stats_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Uploads and re-keys update detections without moving them: nothing to do then.
    IF NOT EXISTS (
        SELECT FROM old_detections o JOIN new_detections n ON n.id = o.id
        WHERE o.ingested_at IS DISTINCT FROM n.ingested_at
           OR o.rule_name IS DISTINCT FROM n.rule_name
           OR coalesce(o.device_hostname, o.device_id)
              IS DISTINCT FROM coalesce(n.device_hostname, n.device_id)
    ) THEN
        RETURN NULL;
    END IF;
    WITH deltas AS (
        SELECT tenant_id, 'RULE' AS dimension, (ingested_at AT TIME ZONE 'UTC')::date AS day,
               rule_name AS name, -1 AS detections
        FROM old_detections
        UNION ALL
        SELECT tenant_id, 'RULE', (ingested_at AT TIME ZONE 'UTC')::date, rule_name, 1
        FROM new_detections
        UNION ALL
        SELECT tenant_id, 'DEVICE', (ingested_at AT TIME ZONE 'UTC')::date,
               coalesce(device_hostname, device_id), -1
        FROM old_detections WHERE coalesce(device_hostname, device_id) IS NOT NULL
        UNION ALL
        SELECT tenant_id, 'DEVICE', (ingested_at AT TIME ZONE 'UTC')::date,
               coalesce(device_hostname, device_id), 1
        FROM new_detections WHERE coalesce(device_hostname, device_id) IS NOT NULL
    ), days AS (
        INSERT INTO detection_days AS t (tenant_id, dimension, day, name, detections)
        SELECT tenant_id, dimension, day, name, sum(detections)::int
        FROM deltas
        GROUP BY 1, 2, 3, 4
        HAVING sum(detections) <> 0
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (tenant_id, dimension, day, name) DO UPDATE SET
            detections = t.detections + EXCLUDED.detections
        RETURNING 1
    )
    INSERT INTO detection_months AS t (tenant_id, dimension, month, name, detections)
    SELECT tenant_id, dimension, date_trunc('month', day)::date, name, sum(detections)::int
    FROM deltas
    GROUP BY 1, 2, 3, 4
    HAVING sum(detections) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, dimension, month, name) DO UPDATE SET
        detections = t.detections + EXCLUDED.detections;
    RETURN NULL;
END;
$$;

CREATE TRIGGER detection_stats_on_insert AFTER INSERT ON detections
    REFERENCING NEW TABLE AS new_detections
    FOR EACH STATEMENT EXECUTE FUNCTION detection_stats_on_insert();
CREATE TRIGGER detection_stats_on_update AFTER UPDATE ON detections
    REFERENCING OLD TABLE AS old_detections NEW TABLE AS new_detections
    FOR EACH STATEMENT EXECUTE FUNCTION detection_stats_on_update();

-- 3. Backfill from the rows there are (cases and detections deleted before this
-- migration are gone and cannot be counted).
INSERT INTO case_created_days (tenant_id, day, created, assigned, assign_ms)
SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, count(*), count(first_assigned_at),
       coalesce(sum(stats_ms(first_assigned_at - created_at)), 0)
FROM cases
GROUP BY 1, 2;
INSERT INTO case_resolved_days (tenant_id, day, severity, resolution, resolved, resolve_ms)
SELECT tenant_id, (resolved_at AT TIME ZONE 'UTC')::date, severity, resolution, count(*),
       sum(stats_ms(resolved_at - created_at))
FROM cases
WHERE resolved_at IS NOT NULL AND resolution IS NOT NULL
GROUP BY 1, 2, 3, 4;
INSERT INTO detection_days (tenant_id, dimension, day, name, detections)
SELECT tenant_id, dimension, day, name, count(*)
FROM (
    SELECT tenant_id, 'RULE' AS dimension, (ingested_at AT TIME ZONE 'UTC')::date AS day,
           rule_name AS name
    FROM detections
    UNION ALL
    SELECT tenant_id, 'DEVICE', (ingested_at AT TIME ZONE 'UTC')::date,
           coalesce(device_hostname, device_id)
    FROM detections
    WHERE coalesce(device_hostname, device_id) IS NOT NULL
) d
GROUP BY 1, 2, 3, 4;

INSERT INTO detection_months (tenant_id, dimension, month, name, detections)
SELECT tenant_id, dimension, date_trunc('month', day)::date, name, sum(detections)::int
FROM detection_days
GROUP BY 1, 2, 3, 4;

-- 4. The open cases by status, severity and kind: one index-only scan of the open cases
-- (the partial indexes of 000008 hold the open cases only; none of them carries the kind).
CREATE INDEX cases_open_stats_idx ON cases (tenant_id, status_rank, severity, kind)
    WHERE status_rank < 4;
