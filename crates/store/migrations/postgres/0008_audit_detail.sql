-- What an audit entry refers to, when the action alone does not say: for a training export,
-- the export's time (its manifest's exported_at), which a model card names when that export
-- trained a model version.
ALTER TABLE audit_log ADD COLUMN detail TEXT;
