//! What the interpreter needs from a compiled node: [`Runnable`], its SQL preparation and its
//! run step. The node types implement it in `crate::nodes`; the engine must not depend on them.

use super::error::RunError;
use super::run::{Cx, Step};
use super::sql::{BuildError, Prepared};
use crate::flow::node::{CompiledOp, OutputShape, ResponseFact, TableWrite};
use crate::tables::def::Tables;
use std::future::Future;
use std::pin::Pin;

/// The future of one node's run step.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Step, RunError>> + Send + 'a>>;

/// A compiled node the engine can run.
pub trait Runnable: CompiledOp + std::any::Any {
    /// The node's statement, built once when the flow is published (`None`: no statement).
    fn prepare(&self, _tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        Ok(None)
    }

    /// [`Runnable::prepare`] for a node that access rules apply to when `rules` is true (an
    /// endpoint that is not `admin`, or a function, and no `rules.bypass` on the node). Nodes
    /// on tables override it; the others have nothing to apply.
    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        let _ = rules;
        self.prepare(tables)
    }

    /// Runs the node once and says where to go next.
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a>;
}

/// A compiled node, as plans the engine runs hold it.
pub type Op = Box<dyn Runnable>;

/// A plan the engine runs.
pub type Plan = crate::flow::Plan<Op>;

impl CompiledOp for Box<dyn Runnable> {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        (**self).targets()
    }
    fn writes(&self) -> bool {
        (**self).writes()
    }
    fn touches_db(&self) -> bool {
        (**self).touches_db()
    }
    fn table_write(&self) -> Option<TableWrite<'_>> {
        (**self).table_write()
    }
    fn runs_nested(&self) -> bool {
        (**self).runs_nested()
    }
    fn ends_cleanly(&self) -> bool {
        (**self).ends_cleanly()
    }
    fn is_respond(&self) -> bool {
        (**self).is_respond()
    }
    fn responses(&self) -> Vec<ResponseFact> {
        (**self).responses()
    }
    fn output(&self) -> OutputShape {
        (**self).output()
    }
    fn body(&self) -> Option<usize> {
        (**self).body()
    }
    fn unruled(&self, catalog: &dyn crate::flow::node::TableCatalog) -> Option<String> {
        (**self).unruled(catalog)
    }
}
