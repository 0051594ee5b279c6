-- Retention (samples.purge, rollups.purge) deletes whole days from the oldest end. Without
-- these indexes each purge read every chunk of the file, blobs included: a gigabyte a year.
CREATE INDEX raw_chunk_day ON raw_chunk (day);
CREATE INDEX rollup_chunk_day ON rollup_chunk (resolution, day);
CREATE INDEX rollup_day_start ON rollup_day (start);
