//! Managed user tables in schema `app`: validated identifiers, field types, definitions, the
//! pure DDL planner, and the store that applies plans in one transaction. Knows no axum.
//! `ident`, `types`, `def`, `ddl`, `decimal` and `query` (the table-query layer: statement text
//! and parameter slots for the data API and database nodes) are pure and may be used by the flow
//! compiler. `violation` classifies database errors on tables for the data API and flows.

pub mod csv;
pub mod ddl;
pub mod decimal;
pub mod def;
pub mod formats;
pub mod ident;
pub mod matching;
pub mod query;
pub mod rows;
pub mod rules;
pub mod store;
pub mod types;
pub mod value;
pub mod violation;

pub use def::{FieldDef, TableDef};
pub use ident::Ident;
pub use types::{FieldType, IdType};
