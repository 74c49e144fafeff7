-- Exports are made in the background: a row is 'pending' from the request until its ZIP is
-- stored ('ready') or could not be made ('failed'). Exports made before were all ready.
ALTER TABLE exports ADD COLUMN status TEXT NOT NULL DEFAULT 'ready';
