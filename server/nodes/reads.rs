//! The checks of the columns a reading node names (`db.query`, `db.aggregate`, `include`):
//! password fields are never read, json fields have no order.

use crate::engine::Op;
use crate::flow::node::NodeCx;
use crate::tables::{FieldType, Ident, TableDef};

/// A column rows can be ordered by (`order_by`, a client sort's `allow`): not a password field
/// and not a json field.
pub(super) fn sortable(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    name: &str,
    field: &str,
) -> Option<Ident> {
    let column = cx.column(def, name, field)?;
    match def.and_then(|d| d.column_type(name)) {
        Some(FieldType::Password) => {
            readable(cx, def, name, field, "sorted");
            None
        }
        Some(FieldType::Json) => {
            cx.problem(
                "flow.unsortable_column",
                field,
                format!("`{name}` is a json field; json fields have no order"),
            );
            None
        }
        _ => Some(column),
    }
}

/// Password fields are write-only: reads never filter, sort or return them.
pub(super) fn readable(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    name: &str,
    field: &str,
    verb: &str,
) -> bool {
    if def.and_then(|d| d.column_type(name)) == Some(FieldType::Password) {
        cx.problem(
            "flow.password_column",
            field,
            format!("`{name}` is a password field; password fields cannot be {verb}"),
        );
        return false;
    }
    true
}
