-- The time-series store (storage/timeseries.py). Times are UTC seconds; a "day" is a UTC day
-- start (a multiple of 86,400), the window of one chunk.

-- One row per (device, measurement). sealed_before: every sample older than this is in a
-- chunk (raw_chunk), every newer one in raw_row; a late sample older than it is merged into
-- its chunk, so the two never hold the same sample.
CREATE TABLE series (
    series_id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    period_s INTEGER NOT NULL,
    sealed_before INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device, key)
);

-- Recent samples (the last hour or so), one row each until they are sealed. bits: the value's
-- IEEE 754 double as a signed 64-bit integer (exact, NaN payloads and -0.0 included); NULL
-- when invalid. Keyed time first: a poll round of 500 series then writes one or two pages at
-- the end of the b-tree, where (series_id, ts) would rewrite one page per series, every
-- minute, into the WAL (flash wear); reading one series' recent rows scans at most an hour.
CREATE TABLE raw_row (
    ts INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    bits INTEGER,
    PRIMARY KEY (ts, series_id)
) WITHOUT ROWID;

-- Sealed samples: one compressed chunk (storage/chunks.py) per series and UTC day, re-encoded
-- as the day's hours are sealed. A rowid
-- table, not WITHOUT ROWID: the blobs are a good part of a page, which a WITHOUT ROWID
-- b-tree would split into overflow pages.
CREATE TABLE raw_chunk (
    series_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX raw_chunk_key ON raw_chunk (series_id, day);

-- 5-minute and hour rollups, one compressed chunk per series, resolution and UTC day:
-- 5-minute rollups are kept for years, as rows they would outweigh the raw samples.
CREATE TABLE rollup_chunk (
    series_id INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    day INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX rollup_chunk_key ON rollup_chunk (series_id, resolution, day);

-- Day rollups as rows, so that period totals (the overview pages) are SQL sums.
-- NULL stands for NaN (SQLite stores no NaN).
CREATE TABLE rollup_day (
    series_id INTEGER NOT NULL,
    start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    minimum REAL,
    maximum REAL,
    mean REAL,
    total REAL,
    quality INTEGER NOT NULL,
    PRIMARY KEY (series_id, start)
) WITHOUT ROWID;
