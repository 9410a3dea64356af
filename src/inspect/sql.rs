//! Data access recognised from SQL, parsed with `sqlparser`, never pattern-matched.
//!
//! A statement is classified by every statement it contains: `EXPLAIN ANALYZE DELETE ...` runs the
//! delete, and so does a `WITH d AS (DELETE ... RETURNING *) SELECT ...`. `data.statements` lists
//! every kind found; `data.statement` is the most consequential of them (see [`weight`]), so a
//! rule written as `data.statement == 'delete'` sees the delete wherever it hides.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, LimitClause, SelectItem, SetExpr, Statement, visit_expressions, visit_relations,
    visit_statements,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::policy::DataFacts;

pub use super::sql_reading::{Reading, read, shows_code};

/// The statement kind given to SQL holding several statements (refused: each would need judging).
pub const MULTIPLE: &str = "multiple";
/// The statement kind given to SQL longer than [`MAX_SQL`] (refused: not parsed).
pub const TOO_LARGE: &str = "too_large";
/// Longest SQL parsed: parsing is the work an agent chooses the size of.
pub const MAX_SQL: usize = 1 << 20;
/// Most tables or columns one statement may name (one more is collected, to tell it went over),
/// and tools one LLM call may declare:
/// rules iterate them.
pub const MAX_NAMES: usize = 256;

/// Kinds ranked from the most consequential down; a kind not listed ranks between the writes
/// listed and the reads.
const WRITES: [&str; 11] = [
    "drop", "truncate", "delete", "alter", "merge", "update", "insert", "replace", "copy", "grant",
    "revoke",
];
/// Kinds that only read or describe.
const READS: [&str; 6] = ["select", "explain", "show", "describe", "values", "set"];

/// How consequential a statement kind is: higher wins `data.statement`.
fn weight(kind: &str) -> usize {
    if let Some(at) = WRITES.iter().position(|w| *w == kind) {
        return 2 * WRITES.len() - at;
    }
    match READS.iter().position(|r| *r == kind) {
        Some(at) => READS.len() - at,
        None => WRITES.len(),
    }
}

/// The kind of one statement; `None` for a query whose body is itself a statement (`WITH ...
/// DELETE`), which is visited and named on its own.
fn kind(statement: &Statement) -> Option<String> {
    match statement {
        Statement::Query(query) => match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                None
            }
            _ => Some("select".to_string()),
        },
        other => other
            .to_string()
            .split_whitespace()
            .next()
            .map(str::to_ascii_lowercase),
    }
}

/// Whether a statement has a WHERE clause; `None` for kinds that cannot have one.
fn where_of(statement: &Statement) -> Option<bool> {
    match statement {
        Statement::Query(query) => match query.body.as_ref() {
            SetExpr::Select(select) => Some(select.selection.is_some()),
            _ => None,
        },
        Statement::Delete(delete) => Some(delete.selection.is_some()),
        Statement::Update(update) => Some(update.selection.is_some()),
        _ => None,
    }
}

/// Parses `sql`; `None` when it is not SQL the parser can read.
pub fn parse(sql: &str) -> Option<DataFacts> {
    if sql.len() > MAX_SQL {
        return Some(DataFacts {
            statement: TOO_LARGE.to_string(),
            ..DataFacts::default()
        });
    }
    let statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let first = statements.first()?;
    // Every statement, the nested ones too, with whether it has a WHERE clause.
    let mut found: Vec<(String, Option<bool>)> = Vec::new();
    let _ = visit_statements(&statements, |statement| {
        if let Some(kind) = kind(statement) {
            found.push((kind, where_of(statement)));
        }
        for effect in super::sql_effects::effects(statement) {
            found.push((effect.to_string(), None));
        }
        ControlFlow::<()>::Continue(())
    });
    let mut kinds: Vec<String> = Vec::new();
    for (kind, _) in &found {
        push_unique(&mut kinds, kind.clone());
    }
    let principal = kinds
        .iter()
        .enumerate()
        .max_by_key(|(at, kind)| (weight(kind), std::cmp::Reverse(*at)))
        .map(|(_, kind)| kind.clone())?;
    let statement = if statements.len() > 1 {
        MULTIPLE.to_string()
    } else {
        principal.clone()
    };
    let mut tables = Vec::new();
    let _ = visit_relations(&statements, |relation| {
        push_unique(&mut tables, super::sql_effects::table_name_of(relation));
        ControlFlow::<()>::Continue(())
    });
    for table in super::sql_effects::table_commands(&statements) {
        push_unique(&mut tables, table);
    }
    let _ = visit_statements(&statements, |statement| {
        if let Statement::Drop { names, .. } = statement {
            for name in names {
                push_unique(&mut tables, super::sql_effects::table_name_of(name));
            }
        }
        for name in super::sql_effects::written(statement) {
            push_unique(&mut tables, name);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut columns = Vec::new();
    if let Statement::Query(query) = first
        && let SetExpr::Select(select) = query.body.as_ref()
        && select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
    {
        columns.push("*".to_string());
    }
    let _ = visit_expressions(&statements, |expr| {
        match expr {
            Expr::Identifier(ident) => push_unique(&mut columns, ident.value.to_ascii_lowercase()),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    push_unique(&mut columns, last.value.to_ascii_lowercase());
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    // A WHERE clause counts only when every statement of the principal kind that can have one
    // has one: a bounded outer SELECT does not bound the DELETE inside it.
    let wheres: Vec<bool> = found
        .iter()
        .filter(|(kind, _)| *kind == principal)
        .filter_map(|(_, has)| *has)
        .collect();
    let has_where = !wheres.is_empty() && wheres.iter().all(|has| *has);
    let limit = match first {
        Statement::Query(query) if principal == "select" => match &query.limit_clause {
            Some(LimitClause::LimitOffset {
                limit: Some(expr), ..
            }) => number(expr),
            Some(LimitClause::OffsetCommaLimit { limit, .. }) => number(limit),
            _ => None,
        },
        _ => None,
    };
    Some(DataFacts {
        statement,
        statements: kinds,
        tables,
        columns,
        has_where,
        limit,
    })
}

fn number(expr: &Expr) -> Option<u64> {
    expr.to_string().trim().parse().ok()
}

/// Adds `value` once; past [`MAX_NAMES`] + 1 names nothing more is kept (nor compared).
pub(super) fn push_unique(list: &mut Vec<String>, value: String) {
    if list.len() <= MAX_NAMES && !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_past_its_bounds_is_marked_not_parsed_whole() {
        let long = format!("SELECT a FROM t WHERE b = '{}'", "x".repeat(MAX_SQL));
        assert_eq!(parse(&long).unwrap().statement, TOO_LARGE);
        let columns: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let wide = parse(&format!("SELECT {} FROM t", columns.join(", "))).unwrap();
        assert_eq!(wide.columns.len(), MAX_NAMES + 1);
    }

    #[test]
    fn sql_table() {
        /// sql, statement, tables, some columns, has WHERE, LIMIT
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            bool,
            Option<u64>,
        );
        let cases: &[Case] = &[
            (
                "SELECT id, email FROM users WHERE id = 1 LIMIT 10",
                "select",
                &["users"],
                &["id", "email"],
                true,
                Some(10),
            ),
            (
                "select * from public.orders o join customers c on o.cid = c.id",
                "select",
                &["public.orders", "customers"],
                &["*", "cid", "id"],
                false,
                None,
            ),
            (
                "DELETE FROM sessions",
                "delete",
                &["sessions"],
                &[],
                false,
                None,
            ),
            (
                "UPDATE accounts SET balance = 0 WHERE owner = 'x'",
                "update",
                &["accounts"],
                &["owner"],
                true,
                None,
            ),
            (
                "INSERT INTO audit (a, b) VALUES (1, 2)",
                "insert",
                &["audit"],
                &[],
                false,
                None,
            ),
            ("DROP TABLE users", "drop", &["users"], &[], false, None),
            (
                "TRUNCATE TABLE users",
                "truncate",
                &["users"],
                &[],
                false,
                None,
            ),
            // The statement inside another is what runs.
            (
                "EXPLAIN ANALYZE DELETE FROM users",
                "delete",
                &["users"],
                &[],
                false,
                None,
            ),
            (
                "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone WHERE 1 = 1 LIMIT 1",
                "delete",
                &["users", "gone"],
                &[],
                false,
                None,
            ),
            (
                "WITH gone AS (DELETE FROM users WHERE id = 7 RETURNING id) SELECT id FROM gone",
                "delete",
                &["users", "gone"],
                &["id"],
                true,
                None,
            ),
            (
                "WITH moved AS (SELECT * FROM a) INSERT INTO b SELECT * FROM moved",
                "insert",
                &["a", "b", "moved"],
                &[],
                false,
                None,
            ),
        ];
        for (sql, statement, tables, columns, has_where, limit) in cases {
            let facts = parse(sql).unwrap_or_else(|| panic!("{sql} parses"));
            assert_eq!(facts.statement, *statement, "{sql}");
            for table in *tables {
                assert!(
                    facts.tables.contains(&table.to_string()),
                    "{sql}: {table} in {:?}",
                    facts.tables
                );
            }
            for column in *columns {
                assert!(
                    facts.columns.contains(&column.to_string()),
                    "{sql}: {column} in {:?}",
                    facts.columns
                );
            }
            assert_eq!(facts.has_where, *has_where, "{sql}");
            assert_eq!(facts.limit, *limit, "{sql}");
        }
        assert!(parse("hello there, not sql").is_none());
        assert_eq!(
            parse("SELECT 1; DELETE FROM users").unwrap().statement,
            MULTIPLE
        );
    }

    #[test]
    fn every_contained_statement_is_listed() {
        let facts = parse("EXPLAIN ANALYZE DELETE FROM users WHERE id = 1").unwrap();
        assert_eq!(facts.statements, ["explain", "delete"]);
        let facts = parse("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d").unwrap();
        assert!(
            facts.statements.contains(&"delete".to_string()),
            "{facts:?}"
        );
        assert!(
            facts.statements.contains(&"select".to_string()),
            "{facts:?}"
        );
    }

    #[test]
    fn read_table() {
        let unreadable = [
            "DO $$BEGIN DELETE FROM users; END$$",
            "  /* note /* nested */ */ -- line\n do language plpgsql $$ begin end $$",
            "(DELETE users WHERE ??? garbage",
            "REASSIGN OWNED BY app TO nobody",
            "SELECT 1 /*!50000 , (SELECT password FROM users) */",
            "SELECT 1 /*M!100100 , (SELECT password FROM users) */",
            // Statements the first list missed, and driver escapes.
            "SHUTDOWN",
            "DBCC SHRINKDATABASE (prod)",
            "XA ROLLBACK 'x'",
            "{call wipe_everything()}",
            "{? = call wipe_everything()}",
            "\u{feff}DO $$BEGIN DELETE FROM users; END$$",
        ];
        for text in unreadable {
            assert!(matches!(read(text), Reading::Unreadable), "{text}");
        }
        let not_sql = [
            "hello there, not sql",
            "{ user { id } }",
            "query { viewer { login } }",
            "",
            "12345",
        ];
        for text in not_sql {
            assert!(matches!(read(text), Reading::NotSql), "{text}");
        }
        assert!(matches!(read("select 1"), Reading::Parsed(_)));
    }

    #[test]
    fn statements_hidden_from_one_database_are_unreadable() {
        // Each is one harmless SELECT to the generic parser and a DELETE to MySQL or PostgreSQL.
        for text in [
            "SELECT 'x\\''; DELETE FROM users; -- '",
            "SELECT 1 --1; DELETE FROM users",
            "SELECT 1 /* /* */; DELETE FROM users; -- */",
            "SELECT \"x\\\"\"; DELETE FROM users; -- \"",
        ] {
            assert!(matches!(read(text), Reading::Unreadable), "{text}");
        }
        // PostgreSQL's E'' strings take backslash escapes: either reading sees the DELETE.
        for text in ["SELECT E'x\\''; DELETE FROM users; -- '"] {
            match read(text) {
                Reading::Unreadable => {}
                Reading::Parsed(facts) => assert_eq!(facts.statement, MULTIPLE, "{text}"),
                Reading::NotSql => panic!("{text} is SQL"),
            }
        }
    }
}
