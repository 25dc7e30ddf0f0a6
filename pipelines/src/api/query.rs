//! Query-string parameters read by name, with errors that name the parameter. Unknown and
//! repeated parameters are refused: a typo must not silently widen a filter.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::error::ApiError;

pub(super) struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// Parses `query` for an endpoint that takes exactly the parameters in `known`.
    pub fn parse(query: &str, known: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded_pairs(query)? {
            // Postgres stores and compares no NUL: refused here rather than failing the query.
            if v.contains('\0') {
                return Err(ApiError::bad_request(format!(
                    "parameter {k:?} contains U+0000 (NUL)"
                )));
            }
            if !known.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {k:?}; this endpoint takes: {}",
                    known.join(", ")
                )));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_request(format!(
                    "parameter {k:?} is given more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    /// A text parameter; an empty value counts as absent.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("{name}: {v:?} is not a whole number"))
                })
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.text(name)
            .map(|v| match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::bad_request(format!(
                    "{name}: {v:?} is not true or false"
                ))),
            })
            .transpose()
    }

    /// An RFC 3339 time, e.g. `2026-12-01T10:00:00Z`.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "{name}: {v:?} is not an RFC 3339 time such as 2026-12-01T10:00:00Z ({e})"
                        ))
                    })
            })
            .transpose()
    }

    /// A parameter that must be one of `allowed`.
    /// `limit`: rows a listing returns, `default` when absent, kept within 1 to `MAX_PAGE`.
    pub fn limit(&self, default: i64) -> Result<i64, ApiError> {
        Ok(self
            .number::<i64>("limit")?
            .unwrap_or(default)
            .clamp(1, crate::records::MAX_PAGE))
    }

    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.text(name) {
            Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::bad_request(format!(
                "{name}: {v:?} is not one of {}",
                allowed.join(", ")
            ))),
            v => Ok(v),
        }
    }
}

fn form_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| q.into_inner())
        .map_err(|e| ApiError::bad_request(format!("the query string cannot be read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_by_name_and_strangers_refused() {
        let known = ["tenant_id", "limit", "from", "resolved", "outcome"];
        let q = QueryParams::parse(
            "tenant_id=acme&limit=20&from=2026-12-01T10%3A00%3A00Z&resolved=true&outcome=",
            &known,
        )
        .unwrap();
        assert_eq!(q.text("tenant_id").as_deref(), Some("acme"));
        assert_eq!(q.number::<i64>("limit").unwrap(), Some(20));
        assert_eq!(q.limit(50).unwrap(), 20);
        let within = |query: &str| {
            QueryParams::parse(query, &known)
                .unwrap()
                .limit(50)
                .unwrap()
        };
        assert_eq!(within(""), 50);
        assert_eq!(within("limit=0"), 1);
        assert_eq!(within("limit=100000"), crate::records::MAX_PAGE);
        assert!(q.time("from").unwrap().is_some());
        assert_eq!(q.flag("resolved").unwrap(), Some(true));
        assert_eq!(q.one_of("outcome", &["allow", "deny"]).unwrap(), None);

        let bad = |query: &str| QueryParams::parse(query, &known).err().map(|e| e.message);
        assert!(bad("tenantid=acme").unwrap().contains("tenantid"));
        assert!(bad("limit=1&limit=2").unwrap().contains("more than once"));
        assert!(bad("tenant_id=a%00b").unwrap().contains("NUL"));
        let q = QueryParams::parse(
            "limit=abc&from=yesterday&resolved=yes&outcome=maybe",
            &known,
        )
        .unwrap();
        assert!(q
            .number::<i64>("limit")
            .unwrap_err()
            .message
            .contains("limit"));
        assert!(q.time("from").unwrap_err().message.contains("from"));
        assert!(q.flag("resolved").unwrap_err().message.contains("resolved"));
        assert!(q
            .one_of("outcome", &["allow", "deny"])
            .unwrap_err()
            .message
            .contains("maybe"));
    }
}
