-- The audit log (security/audit.py): a SHA-256 hash chain, one row per security event.
-- Ids are consecutive (the writer assigns head_id + 1), so a gap is a deleted record. No index
-- but the id: pages read newest first by id, and at 100,000 records a filtered scan is cheap,
-- while every index would cost each fsync'd insert.
CREATE TABLE audit_record (
    id INTEGER PRIMARY KEY,
    -- UTC, ISO 8601 with microseconds and "Z": fixed width, so text order is time order.
    time TEXT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_name TEXT NOT NULL,
    source TEXT NOT NULL,
    interface TEXT NOT NULL,
    -- Canonical JSON object (sorted keys, ASCII): user text is data here, never markup.
    details TEXT NOT NULL,
    -- Hex SHA-256 of the record before this one, and of this record's fields plus prev_hash.
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- Where the chain starts and ends. Start: the first id still stored and the hash of the last
-- record rolled off before it (64 zeros before any roll-off), so roll-off keeps the chain
-- verifiable and deleting the oldest remaining record is still seen. End: the newest id and
-- hash, so deleting or rewriting the newest record is seen too. Written in the same
-- transaction as the records it describes.
CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    first_id INTEGER NOT NULL,
    first_prev_hash TEXT NOT NULL,
    head_id INTEGER NOT NULL,
    head_hash TEXT NOT NULL
);
INSERT INTO audit_anchor VALUES (
    1,
    1,
    '0000000000000000000000000000000000000000000000000000000000000000',
    0,
    '0000000000000000000000000000000000000000000000000000000000000000'
);

-- Guards against our own mistakes, not against an attacker (who can drop them): records are
-- never edited, and only records the anchor has already rolled off may be deleted.
CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
BEGIN
    SELECT RAISE(ABORT, 'audit records are never edited');
END;
CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record
WHEN OLD.id >= (SELECT first_id FROM audit_anchor)
BEGIN
    SELECT RAISE(ABORT, 'audit records are only deleted by roll-off');
END;
