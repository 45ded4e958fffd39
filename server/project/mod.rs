//! Changes to the project that span its parts: a change of a table together with what it does
//! to the flows that use the table (impact, rewrites for renames, republish), in one
//! transaction; and the whole project as files (`files`), exported (`export`), planned and
//! applied all or nothing (`apply`). Above `tables`, `catalog`, `nodes` and `serving`; below
//! `http`.

pub mod apply;
pub mod export;
pub mod files;
pub mod flow_tests;
pub mod sample;
pub mod table_changes;
