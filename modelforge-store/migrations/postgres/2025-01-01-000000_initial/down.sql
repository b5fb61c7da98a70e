DROP TABLE memories;
DROP TABLE messages;
DROP TABLE sessions;
DROP TABLE users;
