//! `approvals` asked by agents' events (`approvals::agent_requests`): each joins the approval
//! that still holds for the same request, or the request already waiting, or opens one. What
//! each found is kept on it for the verdict the agent is sent after the commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Table;
use crate::approvals::{AgentApproval, Joined};
use crate::path::RowSet;

pub(in crate::sinks::postgres) struct AgentApprovals;

fn asks(sets: &[RowSet]) -> impl Iterator<Item = &AgentApproval> {
    sets.iter().flat_map(|s| &s.agent_approvals)
}

type Found = (
    String,
    String,
    Uuid,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    bool,
);

impl Table for AgentApprovals {
    fn name(&self) -> &'static str {
        "approvals"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        asks(sets).next().is_some()
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let asks: Vec<&AgentApproval> = asks(sets).collect();
            let keys: Vec<String> = asks.iter().map(|a| a.request.key()).collect();
            let col = |f: fn(&AgentApproval) -> Option<String>| {
                asks.iter().map(|a| f(a)).collect::<Vec<_>>()
            };
            // Found first (an approval that holds, else the request that waits, as the snapshot
            // sees them); a new request only for keys with neither, the batch's first ask of
            // each. A waiting request past its expiry is joined too: it holds the one-pending
            // index until the sweep expires it, and the agent is then told `expired` and may
            // ask again. A request another engine opens meanwhile makes the insert skip: that
            // ask is told no request (its verdict still says require_approval).
            let found: Vec<Found> = sqlx::query_as(
                "WITH ask AS (
                     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[],
                                          $5::text[], $6::text[], $7::text[], $8::text[],
                                          $9::uuid[], $10::text[], $11::text[], $12::text[],
                                          $13::timestamptz[])
                         WITH ORDINALITY AS x(id, t, k, rule, p, a, res, reasons, d, rev, dig,
                                              agent, exp, ord)
                 ), found AS (
                     SELECT DISTINCT ON (ap.tenant_id, ap.request_key)
                            ap.tenant_id AS t, ap.request_key AS k, ap.approval_id, ap.status,
                            ap.expires_at, ap.grant_until
                     FROM approvals ap
                     JOIN (SELECT DISTINCT t, k FROM ask) q
                       ON ap.tenant_id = q.t AND ap.request_key = q.k
                     WHERE (ap.status = 'approved' AND ap.grant_until > now())
                        OR ap.status = 'pending'
                     ORDER BY ap.tenant_id, ap.request_key, ap.status = 'approved' DESC,
                              ap.requested_at DESC
                 ), first AS (
                     SELECT DISTINCT ON (t, k) * FROM ask
                     WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.t = ask.t AND f.k = ask.k)
                     ORDER BY t, k, ord
                 ), made AS (
                     INSERT INTO approvals (approval_id, tenant_id, request_key, source, rule,
                                            principal, action, resource, reasons, decision_id,
                                            policy_revision, policy_digest, requested_at,
                                            expires_at, agent_id)
                     SELECT id, t, k, 'agent', rule, p, a, res, reasons::jsonb, d, rev, dig,
                            now(), exp, agent
                     FROM first
                     ON CONFLICT DO NOTHING
                     RETURNING tenant_id AS t, request_key AS k, approval_id, status,
                               expires_at, grant_until
                 )
                 SELECT t, k, approval_id, status, expires_at, grant_until, false FROM found
                 UNION ALL
                 SELECT t, k, approval_id, status, expires_at, grant_until, true FROM made",
            )
            .bind(asks.iter().map(|a| a.approval_id).collect::<Vec<_>>())
            .bind(col(|a| Some(a.request.tenant.clone())))
            .bind(&keys)
            .bind(col(|a| Some(a.request.rule.clone())))
            .bind(col(|a| a.request.principal.clone()))
            .bind(col(|a| a.request.action.clone()))
            .bind(col(|a| Some(a.request.resource.clone())))
            .bind(col(|a| Some(a.request.reasons.to_string())))
            .bind(
                asks.iter()
                    .map(|a| a.request.decision_id)
                    .collect::<Vec<_>>(),
            )
            .bind(col(|a| Some(a.request.policy_revision.clone())))
            .bind(col(|a| Some(a.request.policy_digest.clone())))
            .bind(col(|a| Some(a.agent_id.clone())))
            .bind(asks.iter().map(|a| a.expires_at).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
            let made = found.iter().filter(|f| f.6).count() as u64;
            let by_key: HashMap<(&str, &str), Joined> = found
                .iter()
                .map(|(t, k, id, status, expires_at, grant_until, made)| {
                    let joined = Joined {
                        id: *id,
                        status: status.clone(),
                        expires_at: *expires_at,
                        grant_until: *grant_until,
                        opened: *made,
                    };
                    ((t.as_str(), k.as_str()), joined)
                })
                .collect();
            for (ask, key) in asks.iter().zip(&keys) {
                let tenant = ask.request.tenant.as_str();
                let joined = by_key.get(&(tenant, key.as_str())).map(|j| Joined {
                    // Opened by this ask, not by another of the batch with the same key.
                    opened: j.opened && j.id == ask.approval_id,
                    ..j.clone()
                });
                ask.set_joined(joined);
            }
            Ok(made)
        })
    }
}
