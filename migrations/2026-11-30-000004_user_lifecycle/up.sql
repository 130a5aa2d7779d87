-- Users have a life cycle: a deactivated user keeps its rows (and its case assignments)
-- but its tokens stop working at once and it can no longer be assigned.
ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;
