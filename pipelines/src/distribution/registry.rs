//! What the registry shows: segments with their latest version and groups, and agents with
//! the versions they apply and how far behind they are.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::records::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SegmentRow {
    pub tenant_id: String,
    pub segment_id: String,
    pub latest_version: i64,
    pub latest_published_at: Option<DateTime<Utc>>,
    /// When the latest version was acknowledged by the broker; `None`: not sent yet.
    pub latest_sent_at: Option<DateTime<Utc>>,
    /// Groups whose agents get this segment.
    pub groups: Vec<String>,
    /// Agents that report applying some version of it, and those behind the latest.
    pub agents: i64,
    pub agents_behind: i64,
}

/// Segments of the tenants in `scope` (every segment with a version or a rule).
pub async fn list_segments(
    pool: &PgPool,
    scope: &TenantScope,
) -> Result<Vec<SegmentRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH keys AS (
             SELECT tenant_id, segment_id FROM segments
             UNION SELECT tenant_id, segment_id FROM segment_rules)
         SELECT k.tenant_id, k.segment_id,
                coalesce(s.latest_version, 0) AS latest_version,
                v.published_at AS latest_published_at, v.sent_at AS latest_sent_at,
                coalesce((SELECT array_agg(r.group_name ORDER BY r.group_name) FROM segment_rules r
                          WHERE r.tenant_id = k.tenant_id AND r.segment_id = k.segment_id),
                         '{}') AS groups,
                (SELECT count(*) FROM agent_segments a
                 WHERE a.tenant_id = k.tenant_id AND a.segment_id = k.segment_id) AS agents,
                (SELECT count(*) FROM agent_segments a
                 WHERE a.tenant_id = k.tenant_id AND a.segment_id = k.segment_id
                   AND a.applied_version < coalesce(s.latest_version, 0)) AS agents_behind
         FROM keys k
         LEFT JOIN segments s USING (tenant_id, segment_id)
         LEFT JOIN segment_versions v ON v.tenant_id = k.tenant_id
              AND v.segment_id = k.segment_id AND v.version = s.latest_version
         WHERE $1::text[] IS NULL OR k.tenant_id = ANY($1)
         ORDER BY k.tenant_id, k.segment_id",
    )
    .bind(scope.ids())
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AgentRow {
    pub tenant_id: String,
    pub agent_id: String,
    pub groups: Vec<String>,
    pub online: bool,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Enrolled with broker credentials (its groups are then the enrolled ones).
    pub enrolled: bool,
    /// Per segment: `{"segment", "applied", "latest"}`.
    pub segments: serde_json::Value,
    /// Segments where the applied version is behind the latest.
    pub behind: i64,
}

/// Agents of the tenants in `scope`, with drift; only those behind when `behind_only`.
pub async fn list_agents(
    pool: &PgPool,
    scope: &TenantScope,
    behind_only: bool,
    limit: i64,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM (
             SELECT g.tenant_id, g.agent_id, g.groups, g.online, g.first_seen_at, g.last_seen_at,
                    EXISTS (SELECT 1 FROM agent_enrollments e
                            WHERE e.tenant_id = g.tenant_id AND e.agent_id = g.agent_id)
                        AS enrolled,
                    coalesce(jsonb_agg(jsonb_build_object(
                        'segment', a.segment_id, 'applied', a.applied_version,
                        'latest', s.latest_version) ORDER BY a.segment_id)
                        FILTER (WHERE a.segment_id IS NOT NULL), '[]') AS segments,
                    count(*) FILTER (WHERE a.applied_version < s.latest_version) AS behind
             FROM agents g
             LEFT JOIN agent_segments a USING (tenant_id, agent_id)
             LEFT JOIN segments s ON s.tenant_id = a.tenant_id AND s.segment_id = a.segment_id
             WHERE $1::text[] IS NULL OR g.tenant_id = ANY($1)
             GROUP BY g.tenant_id, g.agent_id) x
         WHERE NOT $2 OR behind > 0
         ORDER BY tenant_id, agent_id LIMIT $3",
    )
    .bind(scope.ids())
    .bind(behind_only)
    .bind(limit)
    .fetch_all(pool)
    .await
}
