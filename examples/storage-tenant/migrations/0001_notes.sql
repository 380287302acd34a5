-- The notes table, with the row the demo reads back to see that the migration ran.
CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at INTEGER NOT NULL);
INSERT INTO notes (body, created_at) VALUES ('written by migration 0001', 0);
