-- Mail notifications (issue 12, item 1): each tenant's recipients of "case created" mail
-- and who hears of assignment changes. The addresses are checked, folded for duplicates
-- and counted in Rust (domain::notifications) before they are written here; the column
-- keeps them as given. assignment_mail is the GraphQL name of AssignmentMail.
ALTER TABLE tenants
    ADD COLUMN case_created_recipients text[] NOT NULL DEFAULT '{}',
    ADD COLUMN assignment_mail text NOT NULL DEFAULT 'ALL'
        CONSTRAINT tenants_assignment_mail_check
        CHECK (assignment_mail IN ('ALL', 'CHANGER_ONLY', 'NEVER'));
