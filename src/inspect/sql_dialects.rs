//! Whether SQL reads alike in every common database. Comments and string literals are lexed
//! differently (MySQL takes `\'` as an escaped quote and `--x` as code, PostgreSQL nests `/* */`,
//! MySQL does not), so text can hide a statement from one reading and run it in another:
//! `SELECT 'a\''; DELETE FROM users; -- '` is one string to the parser and two statements to
//! MySQL. The code (unquoted words and statement separators) must be the same in every reading,
//! or the SQL cannot be judged.

use sqlparser::dialect::{
    BigQueryDialect, Dialect, DuckDbDialect, GenericDialect, MySqlDialect, PostgreSqlDialect,
    SnowflakeDialect,
};
use sqlparser::tokenizer::{Token, Tokenizer};

/// Whether `text` lexes to the same code in the dialects of the databases agents talk to
/// (PostgreSQL, MySQL, Snowflake, DuckDB, BigQuery; the generic reading is the one judged); text
/// one of them cannot lex does not read alike either. A reading with a backtick outside quotes is
/// left out: that database (PostgreSQL) refuses the whole text, so nothing of it runs there.
/// SQL Server and SQLite quote identifiers in brackets, which the others read as subscripts: left
/// out, or every `[dbo].[users]` would be unreadable (their comments and strings lex as the
/// generic reading does).
pub fn reads_alike(text: &str) -> bool {
    let dialects: [&dyn Dialect; 5] = [
        &PostgreSqlDialect {},
        &MySqlDialect {},
        &SnowflakeDialect,
        &DuckDbDialect {},
        &BigQueryDialect,
    ];
    let Some(Reading::Code(judged)) = code(&GenericDialect {}, text) else {
        return false;
    };
    dialects.iter().all(|dialect| match code(*dialect, text) {
        Some(Reading::Code(code)) => code == judged,
        Some(Reading::Refused) => true,
        None => false,
    })
}

/// How one database reads a text.
enum Reading {
    /// Its code: unquoted words (lower-case; not `$1`) and `;`, in order.
    Code(Vec<String>),
    /// A backtick outside quotes: the database refuses the text.
    Refused,
}

/// How `dialect` reads `text`; `None` when it cannot be lexed.
fn code(dialect: &dyn Dialect, text: &str) -> Option<Reading> {
    let tokens = Tokenizer::new(dialect, text).tokenize().ok()?;
    let mut code = Vec::new();
    for token in tokens {
        match token {
            // `$1` is a placeholder to some, a word to others: one token either way.
            Token::Word(word) if word.quote_style.is_none() && !word.value.starts_with('$') => {
                code.push(word.value.to_lowercase())
            }
            Token::SemiColon => code.push(";".to_string()),
            Token::Char('`') => return Some(Reading::Refused),
            _ => {}
        }
    }
    Some(Reading::Code(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_statements_do_not_read_alike() {
        let hidden = [
            // MySQL: `\'` escapes the quote, so the string ends before `;`.
            "SELECT 'x\\''; DELETE FROM users; -- '",
            // MySQL: `--1` is minus minus one, not a comment.
            "SELECT 1 --1; DELETE FROM users",
            // PostgreSQL nests block comments, MySQL does not.
            "SELECT 1 /* /* */; DELETE FROM users; -- */",
            // MySQL: `#` begins a comment that PostgreSQL reads as code.
            "SELECT 1 # ; DELETE FROM users",
        ];
        for text in hidden {
            assert!(!reads_alike(text), "{text}");
        }
    }

    #[test]
    fn everyday_sql_reads_alike() {
        let everyday = [
            "SELECT id, email FROM users WHERE id = 1 LIMIT 10",
            "select * from public.orders o join customers c on o.cid = c.id",
            "SELECT name FROM t WHERE note = 'it''s; fine' -- trailing note",
            "SELECT \"Name\" FROM \"Users\" WHERE a::int > 3",
            "SELECT `name` FROM `users` WHERE created_at > NOW() - INTERVAL 1 DAY",
            "INSERT INTO audit (a, b) VALUES (1, 'x'); ",
            "/* report */ SELECT count(*) FROM events WHERE kind IN ('a', 'b')",
            "UPDATE accounts SET balance = balance - 10 WHERE id = $1",
            "SELECT * FROM t WHERE a LIKE '%50\\%%'",
            "SELECT [Name] FROM [dbo].[Users] WHERE [Id] = 1",
            "SELECT tags[1], data->>'k' FROM docs WHERE body @@ to_tsquery('cat')",
        ];
        for text in everyday {
            assert!(reads_alike(text), "{text}");
        }
    }
}
