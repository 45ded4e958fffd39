pub mod engine; pub mod flow; pub mod tables;
pub mod pg;
