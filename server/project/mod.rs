//! Changes to the project that span its parts. Today: a change of a table together with what it
//! does to the flows that use the table (impact, rewrites for renames, republish), in one
//! transaction. Above `tables`, `catalog`, `nodes` and `serving`; below `http`.

pub mod sample;
pub mod table_changes;
