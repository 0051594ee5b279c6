-- How far each series' rollups are built (datalogger/rollupworker.py): every 5-minute bucket
-- that starts before rolled_until is written, and its hour and day too once they are whole.
-- 0: nothing rolled up yet.
ALTER TABLE series ADD COLUMN rolled_until INTEGER NOT NULL DEFAULT 0;
