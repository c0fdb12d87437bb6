-- Who read which patient's data (IHE Basic Audit Log Patterns fields). Append-only: the code never
-- updates or deletes a row.
CREATE TABLE IF NOT EXISTS journey_access_log (
    id TEXT PRIMARY KEY,
    at_micros BIGINT NOT NULL,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation TEXT NOT NULL,
    call TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_access_log_patient ON journey_access_log (patient_id, at_micros);
