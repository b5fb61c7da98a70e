DROP TABLE settings;
DROP TABLE api_keys;
ALTER TABLE sessions DROP COLUMN model;
