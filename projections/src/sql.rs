//! SQL for batched folds and paged queries, written once for SQLite and PostgreSQL: multi-row
//! `INSERT`s and `IN (…)` lists in a few fixed sizes (so that each connection prepares few distinct
//! statements and reuses them), and the setup a fold's transaction needs on each backend.
use sqlx::{any::AnyArguments, query::Query, Any, AnyConnection};

/// Prepares the transaction of a batch that reads rows, then writes them. (On SQLite the runner
/// began it `BEGIN IMMEDIATE`, `db::begin_write`: it holds the write lock before it reads.)
pub async fn begin_batch(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "PostgreSQL" {
        // Every statement of a fold looks rows up by key. Without statistics (fresh tables during
        // a rebuild, not analysed yet) PostgreSQL estimates `IN (…)` lists to match much of a
        // table and scans it whole: a rebuild would be quadratic. This transaction only.
        sqlx::Executor::execute(&mut *conn, "SET LOCAL enable_seqscan = off").await?;
    }
    Ok(())
}

/// Chunk sizes of multi-row statements: few distinct statements (prepared once per connection).
const CHUNKS: [usize; 5] = [128, 32, 8, 2, 1];

pub fn chunk_len(n: usize) -> usize {
    CHUNKS.iter().copied().find(|c| *c <= n).unwrap_or(1)
}

/// Placeholders of a multi-row statement: `?` for SQLite, whose lookup of numbered parameters
/// (`$n`) is linear in their number (quadratic over a statement), `$n` for PostgreSQL.
pub fn anonymous(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// ` COLLATE "C"` on PostgreSQL, nothing on SQLite: after a text expression of an `ORDER BY`, so
/// that identifiers sort in byte order on both, as Rust compares strings (SQLite compares bytes;
/// PostgreSQL would follow the database's locale, and ICU or glibc locales order text otherwise).
pub fn bytewise(conn: &AnyConnection) -> &'static str {
    if conn.backend_name() == "PostgreSQL" {
        " COLLATE \"C\""
    } else {
        ""
    }
}

/// `$from, $from+1, …` (`n` placeholders), or `?, ?, …`.
pub fn placeholders(anonymous: bool, from: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 6);
    push_placeholders(&mut out, anonymous, from, n);
    out
}

fn push_placeholders(out: &mut String, anonymous: bool, from: usize, n: usize) {
    use std::fmt::Write;
    for i in from..from + n {
        if i > from {
            out.push_str(", ");
        }
        if anonymous {
            out.push('?');
        } else {
            let _ = write!(out, "${i}");
        }
    }
}

/// `($1, …, $cols), ($cols+1, …), …` for `rows` rows.
pub fn values(anonymous: bool, cols: usize, rows: usize) -> String {
    let mut out = String::with_capacity(rows * (cols * 6 + 4));
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        push_placeholders(&mut out, anonymous, r * cols + 1, cols);
        out.push(')');
    }
    out
}

pub type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A row written with multi-row `INSERT`s.
pub trait SqlRow {
    const COLS: usize;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q>;
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…) {tail}` over `rows`, in chunks.
pub async fn insert_rows<R: SqlRow>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &str,
    tail: &str,
    rows: &[R],
) -> Result<(), sqlx::Error> {
    let mut rest = rows;
    while !rest.is_empty() {
        let (chunk, next) = rest.split_at(chunk_len(rest.len()));
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {} {tail}",
            values(anonymous(conn), R::COLS, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = r.bind(q);
        }
        q.execute(&mut *conn).await?;
        rest = next;
    }
    Ok(())
}

/// Sizes of `IN (…)` lists: a short list is padded to the next size by repeating a key (which
/// changes nothing), so that a batch needs one round trip per table and few distinct statements.
const IN_SIZES: [usize; 4] = [4, 16, 64, 256];

/// `keys` cut into lists of the sizes above, the last one padded.
pub fn in_lists<'k>(keys: &[&'k str]) -> Vec<Vec<&'k str>> {
    keys.chunks(IN_SIZES[IN_SIZES.len() - 1])
        .map(|chunk| {
            let size = IN_SIZES
                .iter()
                .copied()
                .find(|s| *s >= chunk.len())
                .unwrap_or(chunk.len());
            let mut list = chunk.to_vec();
            list.resize(size, chunk[0]);
            list
        })
        .collect()
}

/// Runs `make(placeholders)` (a query) over `keys` in `IN` lists, binding the keys; all rows.
pub async fn select_in(
    conn: &mut AnyConnection,
    keys: &[&str],
    make: impl Fn(&str) -> String,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut out = Vec::new();
    for list in in_lists(keys) {
        let sql = make(&placeholders(anonymous(conn), 1, list.len()));
        let mut q = sqlx::query(&sql);
        for k in list {
            q = q.bind(k);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Runs `make(placeholders)` (a statement) over `keys` in `IN` lists.
pub async fn execute_in(
    conn: &mut AnyConnection,
    keys: &[&str],
    make: impl Fn(&str) -> String,
) -> Result<(), sqlx::Error> {
    for list in in_lists(keys) {
        let sql = make(&placeholders(anonymous(conn), 1, list.len()));
        let mut q = sqlx::query(&sql);
        for k in list {
            q = q.bind(k);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A lower-case `LIKE` pattern (escaped with `\`) finding a part of a name as a reader typed it
/// (trimmed, any case).
pub fn contains_pattern(typed: &str) -> String {
    let mut p = String::from("%");
    for c in typed.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The key a name is found by (a patient's, a place's, a professional's): lower case, without accents, words separated by one
/// space ("LEFÈVRE Zoé-Anne" → "lefevre zoe anne"), so that what a coordinator types matches
/// whatever the case and accents, on SQLite (whose `LOWER` knows ASCII only) as on PostgreSQL.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'œ' => "oe",
            'æ' => "ae",
            'ß' => "ss",
            c if c.is_alphanumeric() => {
                key.push(c);
                continue;
            }
            _ => " ",
        };
        if folded != " " || !key.is_empty() && !key.ends_with(' ') {
            key.push_str(folded);
        }
    }
    key.trim_end().to_string()
}

/// The `LIKE` pattern finding what a reader typed in a name's key ([`name_key`]), whatever its
/// case and accents.
pub fn key_pattern(typed: &str) -> String {
    contains_pattern(&name_key(typed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typed_part_of_a_name_is_a_pattern_with_its_wildcards_escaped() {
        assert_eq!(super::contains_pattern(" Cardio "), "%cardio%");
        assert_eq!(super::contains_pattern("50%_b\\"), "%50\\%\\_b\\\\%");
    }
}
