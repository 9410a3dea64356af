//! What a string found in an SQL field is: SQL the parser reads (its facts), SQL it cannot read
//! (which cannot be judged), or not SQL at all (natural language, an id).

use super::sql::parse;
use crate::policy::DataFacts;

/// What a string in an SQL field turned out to be.
#[derive(Debug)]
pub enum Reading {
    /// Parsed: its facts.
    Parsed(DataFacts),
    /// It begins like a statement a database runs, but the parser cannot read it (a `DO` block,
    /// a dialect's own syntax): it cannot be judged.
    Unreadable,
    /// Not SQL at all (natural language, an id).
    NotSql,
}

/// Reads `text` found in an SQL field: parsed facts, SQL the parser cannot read, or not SQL.
pub fn read(text: &str) -> Reading {
    // MySQL runs what a `/*! ... */` comment holds, MariaDB also `/*M! ... */`; the parser skips
    // both as comments.
    let lower = text.to_ascii_lowercase();
    if lower.contains("/*!") || lower.contains("/*m!") {
        return Reading::Unreadable;
    }
    // What one database reads as a comment or a string another may run.
    if !super::sql_dialects::reads_alike(text) {
        return if starts_like_sql(text) || parse(text).is_some() {
            Reading::Unreadable
        } else {
            Reading::NotSql
        };
    }
    match parse(text) {
        Some(facts) => Reading::Parsed(facts),
        None if starts_like_sql(text) => Reading::Unreadable,
        None => Reading::NotSql,
    }
}

/// Whether `text` shows punctuation that SQL needs and a search query seldom has (`;`, `$`, `(`,
/// `=`, `*`, a comment, a brace or a backtick): what tells SQL the parser cannot read from a
/// sentence that happens to begin with `show`, `explain` or `do`.
pub fn shows_code(text: &str) -> bool {
    text.contains([';', '$', '(', '=', '*', '{', '`'].as_slice())
        || text.contains("--")
        || text.contains("/*")
}

/// The words a statement can begin with in the common databases (PostgreSQL, MySQL, SQLite,
/// SQL Server, Snowflake, DuckDB, BigQuery). Text in an SQL field that begins with one of them is
/// taken for SQL: when it does not parse it is refused as uninspected rather than let through
/// unjudged.
const STATEMENT_WORDS: &str = "\
    abort alter analyse analyze attach backup begin call checkpoint close cluster comment \
    commit copy create deallocate declare delete desc describe detach discard do drop end \
    exec execute explain export fetch flush from grant handler import insert install kill \
    listen load lock merge move msck notify optimize pivot pragma prepare purge reassign \
    refresh reindex release rename replace reset restore revoke rollback savepoint security \
    select set show start summarize table truncate uncache undrop uninstall unlisten unload \
    unlock unpivot update upsert use vacuum values with \
    binlog bulk checksum dbcc reconfigure setuser shutdown waitfor xa";

/// Whether `text` begins, after blanks, comments and opening parentheses, with a word a SQL
/// statement can begin with.
fn starts_like_sql(text: &str) -> bool {
    let mut rest = text;
    loop {
        // `{call f()}` and `{? = call f()}` are JDBC and ODBC escapes the driver turns into SQL.
        let trimmed = rest.trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ';' | '{' | '?' | '=' | '\u{feff}')
        });
        if let Some(line) = trimmed.strip_prefix("--") {
            rest = line.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(block) = trimmed.strip_prefix("/*") {
            rest = skip_block_comment(block);
        } else {
            rest = trimmed;
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    STATEMENT_WORDS.split_whitespace().any(|w| w == word)
}

/// The text after a `/* ... */` comment whose opening was already taken off (PostgreSQL nests
/// them); an unterminated comment leaves nothing.
fn skip_block_comment(mut text: &str) -> &str {
    let mut depth = 1usize;
    while depth > 0 {
        let open = text.find("/*");
        let close = text.find("*/");
        match (open, close) {
            (Some(o), Some(c)) if o < c => {
                depth += 1;
                text = &text[o + 2..];
            }
            (_, Some(c)) => {
                depth -= 1;
                text = &text[c + 2..];
            }
            (_, None) => return "",
        }
    }
    text
}
