-- The access log chained (each record carries its position, the previous record's hash and its
-- own), the address a call came from, how many calls a record stands for (refusals beyond a rate
-- are counted, not written one by one), and the patients a list read returned (one row each in
-- journey_access_patients, so that "who looked at patient X" finds list reads too).
-- Records written before this migration have no position: verification reports them.
ALTER TABLE journey_access_log ADD COLUMN seq BIGINT;
ALTER TABLE journey_access_log ADD COLUMN prev_hash TEXT;
ALTER TABLE journey_access_log ADD COLUMN hash TEXT;
ALTER TABLE journey_access_log ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE journey_access_log ADD COLUMN calls BIGINT NOT NULL DEFAULT 1;
ALTER TABLE journey_access_log ADD COLUMN patients TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX IF NOT EXISTS journey_access_log_seq ON journey_access_log (seq);
CREATE INDEX IF NOT EXISTS journey_access_log_at ON journey_access_log (at_micros, id);
CREATE INDEX IF NOT EXISTS journey_access_log_subject ON journey_access_log (subject, at_micros);
CREATE TABLE IF NOT EXISTS journey_access_patients (
    patient_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (patient_id, seq)
);
