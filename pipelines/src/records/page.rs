//! What every listing shares: the tenants it may show, its page size, and the page it returns.

use chrono::{DateTime, Utc};
use portcullis_engine::TenantId;
use serde::Serialize;
use sqlx::{Postgres, QueryBuilder};

use super::cursor::Cursor;

/// Most rows a page holds; a larger `limit` is cut to this.
pub const MAX_PAGE: i64 = 500;

/// Which tenants' rows a query may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    All,
    /// These tenants only; none means no rows.
    Only(Vec<TenantId>),
}

impl TenantScope {
    /// The tenant ids to bind into `tenant_id = ANY($n)`, or `None` for every tenant.
    pub fn ids(&self) -> Option<Vec<String>> {
        match self {
            TenantScope::All => None,
            TenantScope::Only(ids) => Some(ids.iter().map(|t| t.to_string()).collect()),
        }
    }
}

/// What every listing is cut by: tenants, a time range `[from, to)`, where the page starts,
/// and how many rows it holds.
#[derive(Debug, Clone)]
pub struct Window {
    pub scope: TenantScope,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl Window {
    /// Appends ` AND {tenant} = ANY(…) AND {time} >= … AND {time} < …` for what is set.
    pub(super) fn push_filters(&self, b: &mut QueryBuilder<Postgres>, tenant: &str, time: &str) {
        if let Some(ids) = self.scope.ids() {
            b.push(format_args!(" AND {tenant} = ANY("))
                .push_bind(ids)
                .push(")");
        }
        if let Some(from) = self.from {
            b.push(format_args!(" AND {time} >= ")).push_bind(from);
        }
        if let Some(to) = self.to {
            b.push(format_args!(" AND {time} < ")).push_bind(to);
        }
    }

    /// The page size asked for, within 1..=MAX_PAGE.
    pub(super) fn page_size(&self) -> i64 {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// One page of rows, and the cursor of the next if there may be one.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says another page exists.
    pub(super) fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next_cursor = if more {
            rows.last().map(|r| key(r).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
