-- Each user has a number the cluster assigns once, at creation; the PKCS#11
-- library derives stable slot IDs from it.
ALTER TABLE users ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
