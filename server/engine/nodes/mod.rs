//! Run steps, one file per node type (the compile steps live in `flow::nodes`).

use super::error::RunError;
use super::run::{Cx, Step};
use crate::flow::Op;

mod auth;
pub mod call;
mod collect;
mod db_delete;
mod db_get;
mod db_insert;
mod db_query;
mod db_sql;
mod db_update;
mod db_upsert;
mod fail;
mod for_each;
mod http_request;
mod if_;
mod respond;
mod script;
mod set;
mod switch;
mod template;
mod validate;

/// Runs one node and says where to go next.
pub async fn run(op: &Op, cx: &mut Cx<'_>) -> Result<Step, RunError> {
    match op {
        Op::Validate {
            value,
            schema,
            ok,
            invalid,
        } => validate::run(cx, value, schema, *ok, *invalid).await,
        Op::DbGet {
            id,
            found,
            not_found,
            ..
        } => db_get::run(cx, id, *found, *not_found).await,
        Op::DbQuery { query, ok } => db_query::run(cx, query, *ok).await,
        Op::DbUpsert {
            values,
            ok,
            conflict,
            ..
        } => db_upsert::run(cx, values, *ok, *conflict).await,
        Op::DbSql {
            statement,
            params,
            ok,
        } => db_sql::run(cx, statement, params, *ok).await,
        Op::DbInsert {
            values,
            ok,
            conflict,
            ..
        } => db_insert::run(cx, values, *ok, *conflict).await,
        Op::DbUpdate {
            id,
            values,
            patch,
            ok,
            not_found,
            conflict,
            ..
        } => db_update::run(cx, id, values, patch.as_ref(), (*ok, *not_found, *conflict)).await,
        Op::DbDelete {
            id,
            ok,
            not_found,
            conflict,
            ..
        } => db_delete::run(cx, id, *ok, *not_found, *conflict).await,
        Op::Set { value, ok } => set::run(cx, value, *ok).await,
        Op::Switch {
            value,
            cases,
            default,
        } => switch::run(cx, value, cases, *default).await,
        Op::ForEach {
            items,
            item,
            body,
            ok,
        } => for_each::run(cx, items, item, *body, *ok).await,
        Op::Collect { value } => collect::run(cx, value).await,
        Op::Call { flow, input, ok } => call::run(cx, flow, input, *ok).await,
        Op::Script { ast, ok } => script::run(cx, ast, *ok).await,
        Op::If {
            condition,
            then,
            otherwise,
        } => if_::run(cx, condition, *then, *otherwise).await,
        Op::HttpRequest(op) => http_request::run(cx, op).await,
        Op::Template {
            template,
            context,
            ok,
        } => template::run(cx, template, context, *ok).await,
        Op::AuthHashPassword { password, ok } => auth::hash_password(cx, password, *ok).await,
        Op::AuthVerifyPassword {
            password,
            against,
            valid,
            invalid,
        } => auth::verify_password(cx, password, against, *valid, *invalid).await,
        Op::AuthIssueToken {
            sub,
            claims,
            expires_in,
            ok,
        } => auth::issue_token(cx, sub, claims.as_ref(), *expires_in, *ok).await,
        Op::Respond {
            status,
            headers,
            body,
            content_type,
        } => respond::run(cx, *status, headers, body, *content_type).await,
        Op::Fail {
            status,
            code,
            message,
        } => fail::run(cx, *status, code, message).await,
    }
}
