//! Events and background work (docs/EVENTS.md): the workers that run jobs, the scheduler that
//! turns schedule occurrences into jobs, and the dispatcher that turns table changes into jobs.
//! Every producer enqueues through `crate::queue`; every job runs a published flow with a
//! trigger through the engine, as an endpoint's request would.

pub mod changes;
pub mod prune;
pub mod schedule;
pub mod scheduler;
pub mod worker;
