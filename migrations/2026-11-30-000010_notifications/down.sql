ALTER TABLE tenants DROP COLUMN assignment_mail, DROP COLUMN case_created_recipients;
