//! The lexical scan of a `db.sql` statement: `:name` parameters become `$n` placeholders, and
//! the statement's shape is found (a query or a data-modifying statement, where a `WITH` list
//! ends, whether it has `RETURNING`). PURE, no database: it follows PostgreSQL's lexical rules
//! for what is *not* a parameter — string literals (`'…'`, `E'…'`, `$tag$…$tag$`), quoted
//! identifiers, `--` and nested `/* */` comments, and `::` casts — so nothing inside them is
//! ever rewritten. Values never enter the text; the engine binds them.
//!
//! Assumes `standard_conforming_strings = on` (Postgres' default; the engine sets it for the
//! statement), so a backslash in `'…'` is an ordinary character.

/// What a `db.sql` statement does, which decides how the engine collects its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `SELECT`, `VALUES`, `TABLE` or a parenthesised query: wrapped as a subquery.
    Query,
    /// A statement starting with `WITH`. `main` is the byte offset (in the rewritten text) of
    /// the primary statement after the `WITH` list, so the engine can add its own CTE to the
    /// list (data-modifying CTEs must stay at the top level).
    With {
        main: usize,
        modifies: bool,
        returning: bool,
    },
    /// `INSERT`, `UPDATE` or `DELETE`, run as a CTE; without `RETURNING` it yields no rows.
    Modify { returning: bool },
}

/// A scanned statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The statement with `$n` for each `:name`, comments replaced by a space, no trailing `;`.
    pub text: String,
    /// Parameter names in `$n` order: `$1` is `params[0]`. A name used twice has one number.
    pub params: Vec<String>,
    /// Every use of a parameter with its line and column (1-based) in the original text.
    pub uses: Vec<(String, usize, usize)>,
    pub shape: Shape,
}

/// Why a statement cannot be used, and where (1-based line and column of the original text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Statements `db.sql` runs; everything else (DDL, `SET`, `COPY`, `CALL`, ...) is refused.
const ALLOWED: &str = "SELECT, VALUES, TABLE, WITH, INSERT, UPDATE or DELETE";

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// 1-based line and column (in characters) of byte offset `at`.
fn position(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// A word outside literals and comments: its lowercase text, paren depth and offset in the
/// rewritten text.
struct Word {
    lower: String,
    depth: usize,
    out_at: usize,
    /// The previous top-level token was a `,` (a new CTE name follows in a `WITH` list).
    after_comma: bool,
}

struct Scanner<'s> {
    src: &'s str,
    /// Byte offset of the next character.
    at: usize,
    out: String,
    params: Vec<String>,
    uses: Vec<(String, usize, usize)>,
    words: Vec<Word>,
    /// A top-level `,` was seen since the last top-level word.
    comma: bool,
    depth: usize,
    starts_with_paren: Option<bool>,
}

impl<'s> Scanner<'s> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.at..].chars();
        it.next();
        it.next()
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ScanError {
        let (line, column) = position(self.src, at);
        ScanError {
            message: message.into(),
            line,
            column,
        }
    }

    /// Copies one character to the output.
    fn copy(&mut self) {
        if let Some(c) = self.peek() {
            self.out.push(c);
            self.at += c.len_utf8();
        }
    }

    fn note_start(&mut self, paren: bool) {
        if self.starts_with_paren.is_none() {
            self.starts_with_paren = Some(paren);
        }
    }

    /// `'…'` with `''` inside; with `escapes`, also `\x` (an `E'…'` string).
    fn quoted(&mut self, quote: char, escapes: bool, what: &str) -> Result<(), ScanError> {
        let start = self.at;
        self.copy();
        loop {
            match self.peek() {
                None => return Err(self.error(start, format!("unterminated {what}"))),
                Some('\\') if escapes => {
                    self.copy();
                    self.copy();
                }
                Some(c) if c == quote => {
                    self.copy();
                    if self.peek() == Some(quote) {
                        self.copy();
                    } else {
                        return Ok(());
                    }
                }
                Some(_) => self.copy(),
            }
        }
    }

    /// `$tag$…$tag$` starting at `$`, or an error for `$1`. Returns false when the `$` starts
    /// neither (it is then copied as an ordinary character).
    fn dollar(&mut self) -> Result<bool, ScanError> {
        let start = self.at;
        let rest = &self.src[self.at + 1..];
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return Err(self.error(
                start,
                format!(
                    "`${digits}` is a positional parameter; name parameters instead, e.g. `:id`"
                ),
            ));
        }
        let tag_len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(if i == 0 {
                    is_ident_start(c)
                } else {
                    is_ident_char(c) && c != '$'
                })
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        if !rest[tag_len..].starts_with('$') {
            return Ok(false);
        }
        let delim = &self.src[self.at..self.at + tag_len + 2];
        let body_start = self.at + delim.len();
        match self.src[body_start..].find(delim) {
            Some(end) => {
                let stop = body_start + end + delim.len();
                self.out.push_str(&self.src[self.at..stop]);
                self.at = stop;
                Ok(true)
            }
            None => Err(self.error(start, format!("unterminated dollar-quoted string {delim}"))),
        }
    }

    /// A `--` comment to the end of the line, or a nested `/* */` comment; replaced by a space.
    fn comment(&mut self) -> Result<(), ScanError> {
        let start = self.at;
        if self.src[self.at..].starts_with("--") {
            self.at = self.src[self.at..]
                .find('\n')
                .map(|i| self.at + i)
                .unwrap_or(self.src.len());
        } else {
            let mut nesting = 0usize;
            loop {
                let rest = &self.src[self.at..];
                if rest.starts_with("/*") {
                    nesting += 1;
                    self.at += 2;
                } else if rest.starts_with("*/") {
                    nesting -= 1;
                    self.at += 2;
                    if nesting == 0 {
                        break;
                    }
                } else if let Some(c) = rest.chars().next() {
                    self.at += c.len_utf8();
                } else {
                    return Err(self.error(start, "unterminated /* comment"));
                }
            }
        }
        self.out.push(' ');
        Ok(())
    }

    /// `:name` at `:` (not `::`): a parameter.
    fn parameter(&mut self) -> Result<(), ScanError> {
        let start = self.at;
        self.at += 1;
        let name: String = self.src[self.at..]
            .chars()
            .take_while(|&c| is_ident_char(c) && c != '$')
            .collect();
        self.at += name.len();
        let valid = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(self.error(
                start,
                format!(
                    "`:{name}` is not a parameter name: use lowercase letters, digits and _, starting with a letter"
                ),
            ));
        }
        let (line, column) = position(self.src, start);
        self.uses.push((name.clone(), line, column));
        let n = match self.params.iter().position(|p| *p == name) {
            Some(i) => i + 1,
            None => {
                self.params.push(name);
                self.params.len()
            }
        };
        self.out.push_str(&format!("${n}"));
        Ok(())
    }

    fn word(&mut self) {
        let start = self.at;
        let len = self.src[self.at..]
            .char_indices()
            .find(|&(_, c)| !is_ident_char(c))
            .map(|(i, _)| i)
            .unwrap_or(self.src.len() - self.at);
        let text = &self.src[start..start + len];
        let after_comma = self.depth == 0 && std::mem::take(&mut self.comma);
        self.words.push(Word {
            lower: text.to_ascii_lowercase(),
            depth: self.depth,
            out_at: self.out.len(),
            after_comma,
        });
        self.out.push_str(text);
        self.at += len;
    }

    fn run(mut self) -> Result<Scanned, ScanError> {
        let mut end: Option<usize> = None;
        while let Some(c) = self.peek() {
            if let Some(semicolon) = end {
                // Only blanks and comments may follow the statement's `;`.
                match c {
                    c if c.is_whitespace() => self.at += c.len_utf8(),
                    '-' if self.peek2() == Some('-') => self.comment()?,
                    '/' if self.peek2() == Some('*') => self.comment()?,
                    _ => {
                        return Err(self.error(
                            semicolon,
                            "db.sql runs one statement; remove the `;` and what follows",
                        ));
                    }
                }
                continue;
            }
            match c {
                '\'' => {
                    self.note_start(false);
                    self.quoted('\'', false, "string literal")?;
                }
                '"' => {
                    self.note_start(false);
                    self.quoted('"', false, "quoted identifier")?;
                }
                '$' => {
                    self.note_start(false);
                    if !self.dollar()? {
                        self.copy();
                    }
                }
                '-' if self.peek2() == Some('-') => self.comment()?,
                '/' if self.peek2() == Some('*') => self.comment()?,
                ':' if self.peek2() == Some(':') => {
                    self.copy();
                    self.copy();
                }
                ':' if self.peek2().is_some_and(is_ident_start) => {
                    self.note_start(false);
                    self.parameter()?;
                }
                ';' => {
                    end = Some(self.at);
                    self.at += 1;
                }
                '(' => {
                    self.note_start(true);
                    self.depth += 1;
                    self.copy();
                }
                ')' => {
                    if self.depth == 0 {
                        return Err(self.error(self.at, "unbalanced `)`"));
                    }
                    self.depth -= 1;
                    self.copy();
                }
                ',' => {
                    self.comma |= self.depth == 0;
                    self.copy();
                }
                c if is_ident_start(c) => {
                    self.note_start(false);
                    let before = self.at;
                    self.word();
                    // E'…' (backslash escapes); U&'…', B'…', X'…', N'…' quote like '…'.
                    let w = &self.src[before..self.at];
                    if self.peek() == Some('\'') && (w == "e" || w == "E") {
                        self.quoted('\'', true, "string literal")?;
                    }
                }
                c if c.is_whitespace() => self.copy(),
                _ => {
                    self.note_start(false);
                    self.copy();
                }
            }
        }
        if self.depth > 0 {
            return Err(self.error(self.src.len(), "unbalanced `(`: a `)` is missing"));
        }
        let shape = self.shape()?;
        let text = self.out.trim_end().to_string();
        Ok(Scanned {
            text,
            params: self.params,
            uses: self.uses,
            shape,
        })
    }

    fn shape(&self) -> Result<Shape, ScanError> {
        let top: Vec<&Word> = self.words.iter().filter(|w| w.depth == 0).collect();
        let returning = |from: usize| {
            top.iter()
                .any(|w| w.out_at >= from && w.lower == "returning")
        };
        if self.starts_with_paren == Some(true) {
            return Ok(Shape::Query);
        }
        let Some(first) = top.first() else {
            return Err(self.error(0, "the statement is empty"));
        };
        let refuse = |w: &str| {
            self.error(
                0,
                format!(
                    "db.sql runs one {ALLOWED} statement, not `{}`",
                    w.to_uppercase()
                ),
            )
        };
        match first.lower.as_str() {
            "select" | "values" | "table" => Ok(Shape::Query),
            "insert" | "update" | "delete" => Ok(Shape::Modify {
                returning: returning(0),
            }),
            "with" => {
                // Skip CTE names: the word after WITH, after RECURSIVE and after each
                // top-level comma. The first statement keyword after that is the main one.
                let (mut expect_name, mut first) = (true, true);
                for w in top.iter().skip(1) {
                    expect_name |= w.after_comma;
                    if expect_name {
                        expect_name = first && w.lower == "recursive";
                        first = false;
                        continue;
                    }
                    first = false;
                    match w.lower.as_str() {
                        "select" | "values" | "table" => {
                            return Ok(Shape::With {
                                main: w.out_at,
                                modifies: false,
                                returning: false,
                            });
                        }
                        "insert" | "update" | "delete" => {
                            return Ok(Shape::With {
                                main: w.out_at,
                                modifies: true,
                                returning: returning(w.out_at),
                            });
                        }
                        "merge" => return Err(refuse("merge")),
                        _ => {}
                    }
                }
                Err(self.error(0, "a WITH list must be followed by a statement"))
            }
            other => Err(refuse(other)),
        }
    }
}

/// Scans a statement: every problem that makes it unusable is an error with its position.
pub fn scan(sql: &str) -> Result<Scanned, ScanError> {
    Scanner {
        src: sql,
        at: 0,
        out: String::with_capacity(sql.len() + 8),
        params: Vec::new(),
        uses: Vec::new(),
        words: Vec::new(),
        comma: false,
        depth: 0,
        starts_with_paren: None,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Scanned {
        match scan(sql) {
            Ok(s) => s,
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }

    fn err(sql: &str) -> ScanError {
        match scan(sql) {
            Ok(s) => panic!("{sql} should be refused, got {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn named_parameters_become_numbered_placeholders_in_order_of_first_use() {
        let s =
            ok("select * from app.todos where done = :done and (title ilike :q or note ilike :q)");
        assert_eq!(
            s.text,
            "select * from app.todos where done = $1 and (title ilike $2 or note ilike $2)"
        );
        assert_eq!(s.params, ["done", "q"]);
        assert_eq!(s.uses.len(), 3);
        assert_eq!(s.shape, Shape::Query);
    }

    #[test]
    fn casts_are_not_parameters_but_a_parameter_may_be_cast() {
        let s = ok("select :id::bigint, x::text, y :: int, CAST(:at AS timestamptz)");
        assert_eq!(
            s.text,
            "select $1::bigint, x::text, y :: int, CAST($2 AS timestamptz)"
        );
        assert_eq!(s.params, ["id", "at"]);
    }

    #[test]
    fn nothing_inside_literals_identifiers_or_comments_is_a_parameter() {
        let cases = [
            "select ':no' as a",
            "select 'it''s :no' as a",
            "select E'\\' :no' as a",
            "select e'\\\\' as a",
            "select $$ :no $$ as a",
            "select $tag$ :no $$ still $tag$ as a",
            "select \":no\" from x",
            "select \"a\"\":no\" from x",
            "select 1 -- :no",
            "select /* :no /* nested :no */ still :no */ 1",
            "select U&'d\\0061t:no' as a",
        ];
        for sql in cases {
            let s = ok(sql);
            assert!(s.params.is_empty(), "{sql}: {:?}", s.params);
        }
    }

    #[test]
    fn comments_are_replaced_so_wrapping_cannot_comment_out_sql() {
        assert_eq!(ok("select 1 -- the end").text, "select 1");
        assert_eq!(ok("select /* x */ 1").text, "select   1");
    }

    #[test]
    fn slices_assignments_and_lone_colons_are_left_alone() {
        let s = ok("select a[1:2], f(x := 1), b[1 : 3] from t");
        assert_eq!(s.text, "select a[1:2], f(x := 1), b[1 : 3] from t");
        assert!(s.params.is_empty());
    }

    #[test]
    fn identifiers_with_dollars_are_not_dollar_quotes() {
        let s = ok("select a$b$c from t where x = :x");
        assert_eq!(s.params, ["x"]);
    }

    #[test]
    fn one_trailing_semicolon_is_dropped_and_a_second_statement_refused() {
        assert_eq!(ok("select 1;  -- done\n").text, "select 1");
        let e = err("select 1; drop table app.x");
        assert!(e.message.contains("one statement"), "{e:?}");
        assert_eq!((e.line, e.column), (1, 9));
        assert!(ok("select ';' as semi").params.is_empty());
    }

    #[test]
    fn unterminated_literals_and_comments_are_refused_where_they_start() {
        for (sql, what, column) in [
            ("select 'abc", "string literal", 8),
            ("select \"abc", "quoted identifier", 8),
            ("select $q$ abc", "dollar-quoted", 8),
            ("select /* abc", "comment", 8),
            ("select E'abc\\'", "string literal", 9),
        ] {
            let e = err(sql);
            assert!(e.message.contains(what), "{sql}: {e:?}");
            assert_eq!(e.column, column, "{sql}");
        }
    }

    #[test]
    fn positional_and_badly_named_parameters_are_refused() {
        assert!(err("select $1").message.contains("positional"));
        let e = err("select 1 from t where a = :Name");
        assert!(e.message.contains(":Name"), "{e:?}");
        assert_eq!((e.line, e.column), (1, 27));
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let s = ok("select\n  'é', :x");
        assert_eq!(s.uses, vec![("x".to_string(), 2, 8)]);
    }

    #[test]
    fn statement_shapes_are_recognised() {
        assert_eq!(ok("SELECT 1").shape, Shape::Query);
        assert_eq!(ok("values (1), (2)").shape, Shape::Query);
        assert_eq!(ok("table app.todos").shape, Shape::Query);
        assert_eq!(ok("(select 1) union (select 2)").shape, Shape::Query);
        assert_eq!(
            ok("insert into app.t (a) values (:a) returning *").shape,
            Shape::Modify { returning: true }
        );
        assert_eq!(
            ok("delete from app.t where id = :id::bigint").shape,
            Shape::Modify { returning: false }
        );
        assert_eq!(
            ok("update app.t set a = (select 1 where true) returning id").shape,
            Shape::Modify { returning: true }
        );
        let s = ok("with recursive update(n) as (select 1), b as (select 2) select * from b");
        let Shape::With { main, modifies, .. } = s.shape else {
            panic!("{:?}", s.shape)
        };
        assert!(!modifies);
        assert_eq!(&s.text[main..], "select * from b");
        let s = ok(
            "WITH gone AS (delete from app.t returning id) INSERT INTO app.log (n) SELECT count(*) FROM gone RETURNING *",
        );
        let Shape::With {
            main,
            modifies,
            returning,
        } = s.shape
        else {
            panic!("{:?}", s.shape)
        };
        assert!(modifies && returning);
        assert!(s.text[main..].starts_with("INSERT"));
    }

    #[test]
    fn other_statements_are_refused() {
        for sql in [
            "drop table app.x",
            "DROP TABLE app.x",
            "create table app.y (a int)",
            "set role sluice",
            "copy app.t to stdout",
            "do $$ begin end $$",
            "merge into app.t using app.s on true when matched then delete",
            "with a as (select 1) merge into app.t using a on true when matched then delete",
            "",
            "  -- nothing\n",
        ] {
            let e = err(sql);
            assert!(
                e.message.contains("db.sql runs one")
                    || e.message.contains("empty")
                    || e.message.contains("WITH"),
                "{sql}: {e:?}"
            );
        }
    }

    #[test]
    fn unbalanced_parentheses_are_refused() {
        assert!(err("select (1").message.contains("unbalanced"));
        assert!(err("select 1)").message.contains("unbalanced"));
    }
}
