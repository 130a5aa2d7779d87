DROP TRIGGER tenants_audit_head ON tenants;
DROP FUNCTION audit_heads_for_new_tenant();
DROP TABLE audit_heads;
DROP TABLE audit_events;
