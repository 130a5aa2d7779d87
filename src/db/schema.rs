// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    audit_events (tenant_id, sequence) {
        tenant_id -> Uuid,
        sequence -> Int8,
        id -> Uuid,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor_type -> Text,
        request_id -> Nullable<Text>,
        client_address -> Nullable<Text>,
        action -> Text,
        case_id -> Nullable<Uuid>,
        case_number -> Nullable<Int4>,
        case_event_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        changes -> Jsonb,
        previous_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_heads (tenant_id) {
        tenant_id -> Uuid,
        last_sequence -> Int8,
        last_hash -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    case_detections (case_id, detection_id) {
        case_id -> Uuid,
        detection_id -> Uuid,
        tenant_id -> Uuid,
        added_at -> Timestamptz,
        observed_at -> Timestamptz,
        ingested_at -> Timestamptz,
        risk_score -> Int4,
        rule_name_key -> Text,
    }
}

diesel::table! {
    case_created_days (tenant_id, day) {
        tenant_id -> Uuid,
        day -> Date,
        created -> Int4,
        assigned -> Int4,
        assign_ms -> Int8,
    }
}

diesel::table! {
    case_resolved_days (tenant_id, day, severity, resolution) {
        tenant_id -> Uuid,
        day -> Date,
        severity -> Int2,
        resolution -> Text,
        resolved -> Int4,
        resolve_ms -> Int8,
    }
}

diesel::table! {
    detection_months (tenant_id, dimension, month, name) {
        tenant_id -> Uuid,
        dimension -> Text,
        month -> Date,
        name -> Text,
        detections -> Int4,
    }
}

diesel::table! {
    detection_days (tenant_id, dimension, day, name) {
        tenant_id -> Uuid,
        dimension -> Text,
        day -> Date,
        name -> Text,
        detections -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    cases (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        number -> Int4,
        kind -> Text,
        name -> Text,
        name_key -> Text,
        description -> Nullable<Text>,
        findings -> Nullable<Text>,
        severity -> Int2,
        status -> Text,
        status_rank -> Int2,
        resolution -> Nullable<Text>,
        auto_created -> Bool,
        auto_rule_name -> Nullable<Text>,
        auto_device -> Nullable<Text>,
        assignee_id -> Nullable<Uuid>,
        assignee_sort -> Text,
        subject_id -> Nullable<Uuid>,
        subject_sort -> Text,
        created_by_id -> Nullable<Uuid>,
        last_modified_by_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        archive_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
        delete_at -> Nullable<Timestamptz>,
        version -> Int4,
        detection_count -> Int4,
        risk_critical -> Int4,
        risk_high -> Int4,
        risk_medium -> Int4,
        risk_low -> Int4,
        risk_informational -> Int4,
        search -> Tsvector,
        legal_hold_reason -> Nullable<Text>,
        legal_hold_set_by_id -> Nullable<Uuid>,
        legal_hold_set_at -> Nullable<Timestamptz>,
        first_assigned_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    delivery_cursors (tenant_id, channel) {
        tenant_id -> Uuid,
        channel -> Text,
        sequence -> Int8,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        paused_at -> Nullable<Timestamptz>,
        leased_by -> Nullable<Uuid>,
        leased_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    detections (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        external_id -> Text,
        source -> Text,
        rule_name -> Text,
        description -> Nullable<Text>,
        observed_at -> Timestamptz,
        ingested_at -> Timestamptz,
        risk_score -> Int4,
        severity -> Int2,
        risk_indicators -> Jsonb,
        device_id -> Nullable<Text>,
        device_hostname -> Nullable<Text>,
        device_type -> Nullable<Text>,
        device_ip -> Nullable<Text>,
        actor -> Nullable<Text>,
        mitre -> Jsonb,
        file_name -> Nullable<Text>,
        file_path -> Nullable<Text>,
        file_size -> Nullable<Int8>,
        file_sha256 -> Nullable<Text>,
        file_md5 -> Nullable<Text>,
        file_mime_type -> Nullable<Text>,
        file_availability -> Nullable<Text>,
        file_content_stored -> Bool,
        raw -> Nullable<Jsonb>,
        rule_name_key -> Text,
        device_hostname_key -> Nullable<Text>,
        actor_key -> Nullable<Text>,
        content_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    evidence_contents (tenant_id, sha256) {
        tenant_id -> Uuid,
        sha256 -> Text,
        size -> Int8,
        stored_at -> Timestamptz,
    }
}

diesel::table! {
    evidence_removals (tenant_id, sha256) {
        tenant_id -> Uuid,
        sha256 -> Text,
        queued_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        case_id -> Uuid,
        author_id -> Uuid,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    subjects (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        username -> Text,
        display_name -> Nullable<Text>,
        department -> Nullable<Text>,
        title -> Nullable<Text>,
        location -> Nullable<Text>,
        manager_username -> Nullable<Text>,
        departure_date -> Nullable<Date>,
        watchlists -> Array<Nullable<Text>>,
        notes -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        username_key -> Text,
        department_key -> Nullable<Text>,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        licenses -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        archive_after_days -> Int4,
        delete_resolved_after_days -> Nullable<Int4>,
        auto_case_enabled -> Bool,
        auto_case_min_severity -> Int2,
        next_case_number -> Int4,
        name_key -> Text,
        case_created_recipients -> Array<Text>,
        assignment_mail -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        email -> Text,
        display_name -> Text,
        role -> Text,
        created_at -> Timestamptz,
        email_key -> Text,
        active -> Bool,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        webhook_id -> Uuid,
        event_sequence -> Int8,
        kind -> Text,
        status -> Text,
        attempts -> Int4,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        url -> Text,
        event_kinds -> Array<Nullable<Text>>,
        secret -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_tokens -> tenants (tenant_id));
diesel::joinable!(audit_events -> tenants (tenant_id));
diesel::joinable!(audit_heads -> tenants (tenant_id));
diesel::joinable!(case_created_days -> tenants (tenant_id));
diesel::joinable!(case_detections -> tenants (tenant_id));
diesel::joinable!(case_resolved_days -> tenants (tenant_id));
diesel::joinable!(cases -> tenants (tenant_id));
diesel::joinable!(delivery_cursors -> tenants (tenant_id));
diesel::joinable!(detection_days -> tenants (tenant_id));
diesel::joinable!(detection_months -> tenants (tenant_id));
diesel::joinable!(detections -> tenants (tenant_id));
diesel::joinable!(messages -> tenants (tenant_id));
diesel::joinable!(evidence_contents -> tenants (tenant_id));
diesel::joinable!(subjects -> tenants (tenant_id));
diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(webhooks -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    audit_events,
    audit_heads,
    case_created_days,
    case_detections,
    case_resolved_days,
    cases,
    delivery_cursors,
    detection_days,
    detection_months,
    detections,
    messages,
    evidence_contents,
    evidence_removals,
    subjects,
    tenants,
    users,
    webhook_deliveries,
    webhooks,
);
