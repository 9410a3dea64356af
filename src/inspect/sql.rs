//! Data access recognised from SQL (parsed with `sqlparser`, never pattern-matched) and from
//! PostgREST-style `select=` queries.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, LimitClause, SelectItem, SetExpr, Statement, visit_expressions, visit_relations,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::policy::DataFacts;

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

/// Parses `sql`; `None` when it is not SQL.
pub fn parse(sql: &str) -> Option<DataFacts> {
    if sql.len() > MAX_SQL {
        return Some(DataFacts {
            statement: TOO_LARGE.to_string(),
            ..DataFacts::default()
        });
    }
    let statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let first = statements.first()?;
    let statement = if statements.len() > 1 {
        MULTIPLE.to_string()
    } else {
        first
            .to_string()
            .split_whitespace()
            .next()?
            .to_ascii_lowercase()
    };
    let mut tables = Vec::new();
    let _ = visit_relations(&statements, |relation| {
        push_unique(&mut tables, relation.to_string().to_ascii_lowercase());
        ControlFlow::<()>::Continue(())
    });
    if let Statement::Drop { names, .. } = first {
        for name in names {
            push_unique(&mut tables, name.to_string().to_ascii_lowercase());
        }
    }
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
    let (has_where, limit) = match first {
        Statement::Query(query) => {
            let has_where = matches!(query.body.as_ref(), SetExpr::Select(select) if select.selection.is_some());
            let limit = match &query.limit_clause {
                Some(LimitClause::LimitOffset {
                    limit: Some(expr), ..
                }) => number(expr),
                Some(LimitClause::OffsetCommaLimit { limit, .. }) => number(limit),
                _ => None,
            };
            (has_where, limit)
        }
        Statement::Delete(delete) => (delete.selection.is_some(), None),
        Statement::Update(update) => (update.selection.is_some(), None),
        _ => (false, None),
    };
    Some(DataFacts {
        statement,
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
fn push_unique(list: &mut Vec<String>, value: String) {
    if list.len() <= MAX_NAMES && !list.contains(&value) {
        list.push(value);
    }
}

/// PostgREST: `GET /rest/v1/<table>?select=a,b` reads columns `a`, `b` of `<table>`.
pub fn postgrest(method: &str, path: &str, query: Option<&str>) -> Option<DataFacts> {
    if !path.contains("/rest/") {
        return None;
    }
    let select = form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "select")?
        .1;
    let table = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|t| !t.is_empty())?;
    let statement = match method {
        "GET" | "HEAD" => "select",
        "POST" => "insert",
        "PATCH" | "PUT" => "update",
        "DELETE" => "delete",
        _ => return None,
    };
    let filters = form_urlencoded::parse(query?.as_bytes())
        .filter(|(k, _)| !matches!(k.as_ref(), "select" | "limit" | "offset" | "order"))
        .count();
    Some(DataFacts {
        statement: statement.to_string(),
        tables: vec![table.to_ascii_lowercase()],
        columns: select
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect(),
        has_where: filters > 0,
        limit: form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok()),
    })
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
        ];
        for (sql, statement, tables, columns, has_where, limit) in cases {
            let facts = parse(sql).unwrap_or_else(|| panic!("{sql} parses"));
            assert_eq!(facts.statement, *statement, "{sql}");
            assert_eq!(facts.tables, *tables, "{sql}");
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
    fn postgrest_select() {
        let facts = postgrest(
            "GET",
            "/rest/v1/customers",
            Some("select=id,email&country=eq.FR&limit=5"),
        )
        .unwrap();
        assert_eq!(facts.statement, "select");
        assert_eq!(facts.tables, ["customers"]);
        assert_eq!(facts.columns, ["id", "email"]);
        assert!(facts.has_where);
        assert_eq!(facts.limit, Some(5));
        assert!(postgrest("GET", "/rest/v1/customers", Some("id=eq.1")).is_none());
    }
}
