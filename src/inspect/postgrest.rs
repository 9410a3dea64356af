//! Data access recognised from PostgREST requests (`/rest/v1/<table>`, as Supabase serves it).

use super::sql::push_unique;
use crate::policy::DataFacts;

/// Query parameters of PostgREST that shape the answer rather than filter rows.
const POSTGREST_RESERVED: [&str; 6] = [
    "select",
    "order",
    "limit",
    "offset",
    "columns",
    "on_conflict",
];

/// PostgREST (as Supabase serves it at `/rest/v1/`): every method on `/rest/v<n>/<table>` is a
/// data access — `GET`/`HEAD` read (every column unless `select=` names them), `POST` inserts,
/// `PATCH` updates, `PUT` upserts, `DELETE` deletes, and `/rest/v<n>/rpc/<function>` calls a
/// function. Filters (`id=eq.1`) are the WHERE clause. Any other path under `/rest/` counts when it
/// carries `select=`. The method is compared without regard to case. A `POST` whose `Prefer`
/// asks for `resolution=merge-duplicates` is an upsert: it updates the rows that exist.
pub fn postgrest(
    method: &str,
    path: &str,
    query: Option<&str>,
    prefer: Option<&str>,
) -> Option<DataFacts> {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let select = params.iter().find(|(k, _)| k == "select").map(|(_, v)| v);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let versioned = segments.windows(2).position(|pair| {
        pair[0] == "rest"
            && pair[1].len() > 1
            && pair[1].starts_with('v')
            && pair[1][1..].bytes().all(|b| b.is_ascii_digit())
    });
    let after = versioned.map_or(&[][..], |at| &segments[at + 2..]);
    let (table, rpc) = match after {
        [table] if !table.is_empty() => (*table, false),
        ["rpc", function] if !function.is_empty() => (*function, true),
        _ if path.contains("/rest/") && select.is_some() => {
            (segments.last().filter(|t| !t.is_empty())?.to_owned(), false)
        }
        _ => return None,
    };
    let method = method.to_ascii_uppercase();
    let statements: Vec<&str> = match method.as_str() {
        _ if rpc => vec!["call"],
        "GET" | "HEAD" => vec!["select"],
        "POST" if merges(prefer) => vec!["update", "insert"],
        "POST" => vec!["insert"],
        "PATCH" => vec!["update"],
        "PUT" => vec!["update", "insert"],
        "DELETE" => vec!["delete"],
        _ => vec![],
    };
    let statements: Vec<String> = if statements.is_empty() {
        vec![method.to_ascii_lowercase()]
    } else {
        statements.into_iter().map(str::to_string).collect()
    };
    let filters: Vec<String> = params
        .iter()
        .filter(|(k, _)| !POSTGREST_RESERVED.contains(&k.as_str()))
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    let mut columns: Vec<String> = match select {
        Some(select) => select
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect(),
        None if statements[0] == "select" => vec!["*".to_string()],
        None => Vec::new(),
    };
    for filter in &filters {
        push_unique(&mut columns, filter.clone());
    }
    let mut tables = vec![table.to_ascii_lowercase()];
    for embedded in select
        .map(|s| embedded_tables(s.as_str()))
        .unwrap_or_default()
    {
        push_unique(&mut tables, embedded);
    }
    // `orders.id=eq.1` filters the embedded `orders`, not the rows of the table asked for.
    let root_filter = filters.iter().any(|f| !f.contains('.'));
    Some(DataFacts {
        statement: statements[0].clone(),
        statements,
        tables,
        columns,
        has_where: root_filter,
        limit: params
            .iter()
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok()),
    })
}

/// The tables a `select=` embeds (`*,buyer:users!inner(id,orders(*))` reads `users` and
/// `orders`): every name that opens a parenthesis, without its alias (`buyer:`), hint (`!inner`)
/// or spread (`...`). Aggregates (`count()`, `amount.sum()`) are not tables.
fn embedded_tables(select: &str) -> Vec<String> {
    let mut tables = Vec::new();
    let mut name = String::new();
    for c in select.chars() {
        match c {
            '(' => {
                let bare = name.rsplit(':').next().unwrap_or_default();
                let bare = bare.split('!').next().unwrap_or_default();
                let bare = bare.trim().trim_start_matches('.').to_ascii_lowercase();
                if !bare.is_empty() && !bare.contains('.') && bare != "count" {
                    push_unique(&mut tables, bare);
                }
                name.clear();
            }
            ',' | ')' => name.clear(),
            c => name.push(c),
        }
    }
    tables
}

/// Whether a `Prefer` header asks an insert to update the rows it collides with.
fn merges(prefer: Option<&str>) -> bool {
    prefer.is_some_and(|p| p.to_ascii_lowercase().contains("merge-duplicates"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgrest_select() {
        let facts = postgrest(
            "GET",
            "/rest/v1/customers",
            Some("select=id,email&country=eq.FR&limit=5"),
            None,
        )
        .unwrap();
        assert_eq!(facts.statement, "select");
        assert_eq!(facts.tables, ["customers"]);
        assert_eq!(facts.columns, ["id", "email", "country"]);
        assert!(facts.has_where);
        assert_eq!(facts.limit, Some(5));
    }

    #[test]
    fn postgrest_every_method_table() {
        // method, path, query, statement, has WHERE
        let cases = [
            ("GET", "/rest/v1/customers", None, "select", false),
            ("get", "/rest/v1/customers/", None, "select", false),
            (
                "HEAD",
                "/rest/v1/customers",
                Some("id=eq.1"),
                "select",
                true,
            ),
            (
                "DELETE",
                "/rest/v1/customers",
                Some("id=gt.0"),
                "delete",
                true,
            ),
            ("delete", "/rest/v1/customers", None, "delete", false),
            (
                "PATCH",
                "/rest/v1/customers",
                Some("id=eq.1"),
                "update",
                true,
            ),
            ("PUT", "/rest/v1/customers", Some("id=eq.1"), "update", true),
            ("POST", "/rest/v1/customers", None, "insert", false),
            ("POST", "/rest/v1/rpc/wipe", None, "call", false),
            (
                "GET",
                "/api/rest/customers",
                Some("select=id"),
                "select",
                false,
            ),
        ];
        for (method, path, query, statement, has_where) in cases {
            let facts = postgrest(method, path, query, None)
                .unwrap_or_else(|| panic!("{method} {path} is PostgREST"));
            assert_eq!(facts.statement, statement, "{method} {path}");
            assert_eq!(facts.has_where, has_where, "{method} {path}");
        }
        let bare = postgrest("GET", "/rest/v1/customers", None, None).unwrap();
        assert_eq!(bare.columns, ["*"], "a bare read returns every column");
        assert_eq!(bare.tables, ["customers"]);
        for (path, query) in [
            ("/rest/api/2/issue", None),
            ("/rest/v1", None),
            ("/v1/customers", Some("id=eq.1")),
            ("/rest/v1/customers/extra/more", None),
        ] {
            assert!(postgrest("GET", path, query, None).is_none(), "{path}");
        }
    }

    #[test]
    fn embedded_resources_are_tables_and_their_filters_no_where() {
        let facts = postgrest(
            "GET",
            "/rest/v1/orders",
            Some("select=*,buyer:users!inner(id,email,cards(*)),...shops(name),count()&users.id=eq.1"),
            None,
        )
        .unwrap();
        assert_eq!(facts.tables, ["orders", "users", "cards", "shops"]);
        assert!(
            !facts.has_where,
            "an embedded filter leaves every order read"
        );
        let root = postgrest(
            "GET",
            "/rest/v1/orders",
            Some("id=eq.1&users.id=eq.1"),
            None,
        );
        assert!(root.unwrap().has_where);
    }

    #[test]
    fn an_insert_that_merges_duplicates_is_an_update() {
        for prefer in [
            "resolution=merge-duplicates",
            "return=minimal, resolution=merge-duplicates",
            "Resolution=Merge-Duplicates",
        ] {
            let facts = postgrest("POST", "/rest/v1/accounts", None, Some(prefer)).unwrap();
            assert_eq!(facts.statement, "update", "{prefer}");
            assert_eq!(facts.statements, ["update", "insert"], "{prefer}");
        }
        let ignored = Some("resolution=ignore-duplicates");
        let facts = postgrest("POST", "/rest/v1/accounts", None, ignored).unwrap();
        assert_eq!(facts.statements, ["insert"]);
    }
}
