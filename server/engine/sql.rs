//! What the engine keeps of a database node's statement, built once per published flow by the
//! node's `prepare` through the one table-query layer (`tables::query`): the text, the slot of
//! each `$n` ([`Slot`], the node modules' slot type), and the table it runs on, so its errors
//! are classified as the data API classifies them. Also the statement of `db.sql`, which is the
//! builder's own SQL wrapped by its shape, not table-query building. Must not depend on the node
//! modules.

use crate::flow::plan::Statement;
use crate::flow::sqlscan::Shape;
use crate::tables::def::Tables;
use crate::tables::query;
use crate::tables::violation::Action;
use crate::tables::{FieldType, TableDef};

pub use crate::tables::query::{RESULT_CAP, capped};

/// How a value is turned into the text of its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Strings as they are, other JSON as JSON text; Postgres casts.
    Text,
    /// A value written to a decimal field: a number (or its text) checked against the field's
    /// digits and bound exactly (`tables::decimal::check`).
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    /// Always JSON text, so a JSON string stays a JSON string.
    Json,
    /// Hashed with argon2id first.
    Password,
}

/// A node's statement and what its parameters need.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement as built, with the result cap as the placeholder [`RESULT_CAP`]; what
    /// runs is [`Prepared::text_capped`].
    pub text: String,
    /// What each `$n` is bound to, in order.
    pub slots: Vec<Slot>,
    /// The kind of each [`Slot::Value`], in `values` order (what a write binds them as).
    pub kinds: Vec<ParamKind>,
    /// `db.update` with `patch`: the columns a patch may name, in [`Slot::Given`] order.
    pub patch: Vec<PatchColumn>,
    /// `db.query` with `page`: what its cursors look like.
    pub cursor: Option<CursorSpec>,
    /// The table the statement runs on, to classify its errors ([`OnTable`]).
    pub on: Option<OnTable>,
    /// [`Prepared::text_capped`] made once: the cap it was made for and the text (`None`:
    /// the text has no cap to write in).
    pub capped: std::sync::OnceLock<(usize, Option<String>)>,
    /// The table's access rule built into the statement, if any.
    pub rule: Option<AppliedRule>,
    /// `db.query` with a client `sort`: the statement of every order it allows, by the sort
    /// as written in canonical form (`-created_at,title`), sorted by it. This statement is the
    /// one of the node's `order_by`.
    pub orders: Vec<(String, Prepared)>,
}

/// A table's access rule in a node's statement: its name for traces and errors
/// (`<table>.<action>`) and its parameters, the statement's last ones.
#[derive(Debug, Clone)]
pub struct AppliedRule {
    pub name: String,
    pub params: Vec<crate::tables::rules::RuleParam>,
    /// A `create` rule (`db.insert`): what the engine sets and checks before the insert.
    pub create: Option<AppliedCreate>,
    /// An `update` rule's `columns`: the only fields a `patch` may name.
    pub writable: Option<Vec<String>>,
}

/// A `create` rule in an insert: values of the node the rule overrides (by value index) and
/// the columns it adds (the first of [`AppliedRule::params`], in order; the check's follow, and
/// the check itself is in the statement).
#[derive(Debug, Clone)]
pub struct AppliedCreate {
    pub overrides: Vec<(usize, crate::tables::rules::RuleParam)>,
    /// The names of the added columns, in parameter order.
    pub added: Vec<String>,
}

/// The rule of `action` on `def` that a node's statement must carry: `None` when `applies`
/// is false (admin endpoints, trigger flows, a node with `rules.bypass`) or the action has
/// no rule.
pub fn rule_for(
    def: &TableDef,
    tables: &Tables,
    action: &str,
    applies: bool,
) -> Option<crate::tables::rules::Condition> {
    if !applies {
        return None;
    }
    crate::tables::rules::condition(def, tables, action)
}

/// The guard a table-query builder renders a rule (or a rule's check) with (its parameters as
/// [`Slot::Rule`]).
pub fn guard(
    rule: &crate::tables::rules::Condition,
) -> impl Fn(&mut query::Params<Slot>) -> String + '_ {
    move |params| rule.sql("t", params, &|_| Slot::Rule)
}

impl Prepared {
    /// A statement of the table-query layer with node slots.
    pub fn new(st: query::Statement<Slot>) -> Prepared {
        let kinds = st
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Value(_, k) => Some(*k),
                _ => None,
            })
            .collect();
        Prepared {
            text: st.text,
            slots: st.slots,
            kinds,
            patch: Vec::new(),
            cursor: None,
            on: None,
            capped: std::sync::OnceLock::new(),
            rule: None,
            orders: Vec::new(),
        }
    }

    /// Notes the rule of `action` on `def` the statement was built with: its condition on the
    /// rows, and the check on the written row (`update`), whose parameters come last.
    pub fn ruled(
        mut self,
        def: &TableDef,
        action: &str,
        rule: Option<&crate::tables::rules::Condition>,
        check: Option<&crate::tables::rules::Condition>,
    ) -> Prepared {
        if rule.is_none() && check.is_none() {
            return self;
        }
        let params = rule
            .into_iter()
            .chain(check)
            .flat_map(crate::tables::rules::Condition::params)
            .collect();
        self.rule = Some(AppliedRule {
            name: format!("{}.{action}", def.name),
            params,
            create: None,
            writable: None,
        });
        self
    }

    /// The text that runs: the result cap written in as a number (`SLUICE_MAX_RESULT_BYTES` is
    /// configuration, fixed for the server's life), so no statement depends on a session
    /// setting, which a transaction pooler would not keep. Made on the first run and kept;
    /// the same text every time, so each connection prepares it once.
    pub fn text_capped(&self, cap: usize) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        let (at, text) = self.capped.get_or_init(|| (cap, with_cap(&self.text, cap)));
        if *at == cap {
            return Cow::Borrowed(text.as_deref().unwrap_or(&self.text));
        }
        // Another cap than the first run's (one program run by two runtimes: tests only).
        with_cap(&self.text, cap).map_or(Cow::Borrowed(self.text.as_str()), Cow::Owned)
    }

    /// The statement run on table `def` doing `action`: its errors are classified with the
    /// table ([`crate::engine::RunError::from_db_on`]).
    pub fn on(mut self, def: &TableDef, tables: &Tables, action: Action) -> Prepared {
        self.on = Some(OnTable::new(def, tables, action));
        self
    }
}

/// The table a node's statement runs on and what it does there, kept so a database error gets
/// the data API's field pointers: the definition, and for a delete the tables that may
/// reference its rows (to name the referencing `table.field`).
#[derive(Debug, Clone)]
pub struct OnTable {
    pub def: TableDef,
    pub tables: Tables,
    pub action: Action,
}

impl OnTable {
    fn new(def: &TableDef, tables: &Tables, action: Action) -> OnTable {
        let referencing = if action == Action::Delete {
            tables
                .iter()
                .filter(|(_, t)| t.fields.iter().any(|f| f.table.as_ref() == Some(&def.name)))
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        } else {
            Tables::new()
        };
        OnTable {
            def: def.clone(),
            tables: referencing,
            action,
        }
    }
}

/// The slot of one parameter of a node's statement: what the node binds to it per request.
/// The node modules' slot type of the table-query layer ([`query::Slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The row id (`db.get`, `db.update`, `db.delete`).
    Id,
    /// Value `i` of a write's `values`.
    Value(usize, ParamKind),
    /// Whether patch column `i` ([`Prepared::patch`]) is given.
    Given(usize),
    /// The value of patch column `i`.
    Patch(usize, ParamKind),
    /// The email an account is looked up by (`auth.verify_password`).
    Email,
    /// Value `i` of `db.query`'s `where`.
    Where(usize, ParamKind),
    /// Value `i` of the filter's conditions (in [`crate::flow::plan::Filter::conditions`]
    /// order).
    Cond(usize, CondParam),
    Limit,
    Offset,
    /// Key `i` of the cursor: the `order_by` columns, then `id`. NULL without a cursor.
    CursorKey(usize),
    /// A parameter of the table's access rule ([`Prepared::rule`]); always the statement's
    /// last parameters, bound by the engine from the caller (`Cx::fetch`).
    Rule,
}

impl query::Slot for Slot {
    /// A condition's template may evaluate to `null`, which skips the condition.
    fn may_skip(&self) -> bool {
        matches!(self, Slot::Cond(..))
    }

    /// A node binds text only: an `in` list is JSON text of an array.
    fn json_list(&self) -> bool {
        matches!(self, Slot::Cond(_, CondParam::List))
    }
}

/// How a condition's value becomes its parameter. `null` always becomes SQL `NULL`, which
/// skips the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondParam {
    Value(ParamKind),
    /// Text, matched literally: `%` and `_` escaped, then `%` appended (and prepended for
    /// `contains`).
    Like {
        contains: bool,
    },
    /// An array, sent as JSON text.
    List,
    /// `true` or `false`.
    Flag,
}

/// `text` with its result cap placeholder ([`RESULT_CAP`]) replaced by `cap`; `None` when it
/// has none. Only the last one is replaced: the builders put the cap after everything else
/// (the wrapper of [`capped`], the guard of a returned row), and a `db.sql` statement's own
/// text, which comes before it, is left as its builder wrote it.
pub(crate) fn with_cap(text: &str, cap: usize) -> Option<String> {
    let at = text.rfind(RESULT_CAP)?;
    let cap = cap.min(i64::MAX as usize);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..at]);
    out.push_str(&format!("{cap}::bigint"));
    out.push_str(&text[at + RESULT_CAP.len()..]);
    Some(out)
}

/// A page cursor names the table and order it was made for, so a cursor of another query is
/// refused instead of silently starting somewhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorSpec {
    /// [`query::fingerprint`].
    pub fingerprint: String,
    /// The `order_by` columns plus `id`.
    pub keys: usize,
}

#[derive(Debug, Clone)]
pub struct PatchColumn {
    pub name: String,
    pub kind: ParamKind,
}

/// A table or column vanished between compile and build (a concurrent schema change).
#[derive(Debug, thiserror::Error)]
#[error("table or column `{0}` no longer exists")]
pub struct BuildError(pub String);

/// The parameter kind of a value compared with or read from column `c`.
pub fn kind(def: &TableDef, c: &str) -> ParamKind {
    match def.column_type(c) {
        Some(FieldType::Password) => ParamKind::Password,
        Some(FieldType::Json) => ParamKind::Json,
        _ => ParamKind::Text,
    }
}

/// The kind of a value written to column `c`: [`kind`], and decimals checked against the field.
/// (Filters compare with any number, so they keep [`ParamKind::Text`] for decimals.)
pub fn write_kind(def: &TableDef, c: &str) -> ParamKind {
    match def.field(c) {
        Some(f) if f.ty == FieldType::Decimal => ParamKind::Decimal {
            precision: f.precision,
            scale: f.scale,
        },
        _ => kind(def, c),
    }
}

/// `db.sql`: the builder's statement, wrapped by its shape ([`statement_sql`]); its
/// parameters are the statement's own, bound by the node.
pub fn sql_statement(st: &Statement) -> Prepared {
    Prepared::new(query::Statement {
        text: statement_sql(st),
        slots: Vec::new(),
    })
}

/// The name of the CTE a `db.sql` statement runs in when it cannot be a subquery.
const STATEMENT_CTE: &str = "\"sluice_statement\"";

/// `db.sql`: the statement with its rows aggregated into one JSON array, sent only within the
/// result cap ([`capped`]). A query becomes a subquery; a data-modifying statement (which
/// Postgres allows only at the top level) becomes a CTE, added to the statement's own `WITH`
/// list if it has one.
pub fn statement_sql(st: &Statement) -> String {
    // `q.*`: the statement's own columns may be called `q`.
    let rows = "coalesce(jsonb_agg(to_jsonb(q.*)), '[]'::jsonb)";
    let collect = |returns: bool| {
        if returns {
            capped(&format!("SELECT {rows} FROM {STATEMENT_CTE} AS q"))
        } else {
            "SELECT '[]'::jsonb".to_string()
        }
    };
    match &st.shape {
        Shape::Query => capped(&format!("SELECT {rows} FROM ({}) AS q", st.text)),
        Shape::Modify { returning } => format!(
            "WITH {STATEMENT_CTE} AS ({}) {}",
            st.text,
            collect(*returning)
        ),
        Shape::With {
            main,
            modifies,
            returning,
        } => {
            let (list, statement) = st.text.split_at((*main).min(st.text.len()));
            format!(
                "{}, {STATEMENT_CTE} AS ({statement}) {}",
                list.trim_end(),
                collect(!modifies || *returning)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_cap_is_written_into_the_statement_once() {
        let text = format!("SELECT '{RESULT_CAP}' AS mine, r FROM x WHERE n <= {RESULT_CAP}");
        let p = Prepared::new(query::Statement {
            text: text.clone(),
            slots: Vec::new(),
        });
        let want = format!("SELECT '{RESULT_CAP}' AS mine, r FROM x WHERE n <= 4096::bigint");
        assert_eq!(
            p.text_capped(4096),
            want,
            "only the builder's own cap, the last one"
        );
        assert_eq!(p.text_capped(4096), want, "kept");
        assert!(p.text_capped(10).ends_with("n <= 10::bigint"));
        assert_eq!(with_cap("SELECT 1", 10), None);
        assert!(
            with_cap(RESULT_CAP, usize::MAX).is_some_and(|t| t == "9223372036854775807::bigint")
        );
    }
}
