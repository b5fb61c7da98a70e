DROP TABLE session_summaries;
ALTER TABLE users DROP COLUMN memory_enabled;
ALTER TABLE sessions DROP COLUMN temporary;
