-- An optional note per published version ("what changed"), asked for in the publish dialog and
-- shown in the version history. Plain text of at most 500 characters; NULL when none was given.
ALTER TABLE sluice.flow_versions
    ADD COLUMN note text CONSTRAINT flow_versions_note_length CHECK (char_length(note) <= 500);
