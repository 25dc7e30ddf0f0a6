//! What a Postgres error says, by its SQLSTATE, for callers that answer some errors themselves.

fn has_code(e: &sqlx::Error, code: &str) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == code)
}

/// 23505: a row with this key exists already.
pub fn unique_violation(e: &sqlx::Error) -> bool {
    has_code(e, "23505")
}

/// 23503: the row refers to one that does not exist (an unknown tenant, say).
pub fn foreign_key_violation(e: &sqlx::Error) -> bool {
    has_code(e, "23503")
}
