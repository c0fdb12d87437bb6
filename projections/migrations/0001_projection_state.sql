-- One row per projection: which generation of its tables is live, and its checkpoint.
CREATE TABLE IF NOT EXISTS journey_projections (
    name TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    checkpoint BIGINT NOT NULL,
    schema_version BIGINT NOT NULL
);
