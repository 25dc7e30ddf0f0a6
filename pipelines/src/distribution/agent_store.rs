//! Agent sessions' store: agents and their applied versions in Postgres, answers on the
//! agent's MQTT config topic.

use std::collections::{BTreeMap, BTreeSet};

use portcullis_actors::{AgentStore, SessionError};
use portcullis_engine::distribution::{
    agent_topic, AgentKey, AgentStatus, AgentTopicKind, ConfigReply, Hello, SegmentId,
    SegmentVersions, SignedEnvelope, AGENT_PROTOCOL,
};
use portcullis_engine::TenantId;
use sqlx::types::Json;
use sqlx::PgPool;

use super::error::foreign_key_violation;
use super::rules::segmentation;
use crate::sinks::mqtt::MqttPublisher;

/// Most versions of one segment in one answer; an agent further behind applies these and asks
/// again (it sees the gap to the retained latest).
pub const MAX_CATCH_UP: i64 = 50;

pub struct PgAgentStore {
    pool: PgPool,
    publisher: MqttPublisher,
    prefix: String,
}

impl PgAgentStore {
    /// What a handler's future owns ('static, so it cannot borrow the store).
    fn handles(&self) -> (PgPool, MqttPublisher, String) {
        (
            self.pool.clone(),
            self.publisher.clone(),
            self.prefix.clone(),
        )
    }

    pub fn new(pool: PgPool, publisher: MqttPublisher, prefix: String) -> Self {
        Self {
            pool,
            publisher,
            prefix,
        }
    }
}

fn store(e: sqlx::Error) -> SessionError {
    SessionError::Store(e.to_string())
}

async fn answer(
    publisher: &MqttPublisher,
    prefix: &str,
    key: &AgentKey,
    reply: &ConfigReply,
) -> Result<(), SessionError> {
    let topic = agent_topic(prefix, &key.tenant, &key.agent, AgentTopicKind::Config);
    let payload = serde_json::to_vec(reply).map_err(|e| SessionError::Send(e.to_string()))?;
    publisher
        .publish(topic, payload, false)
        .await
        .map_err(|e| SessionError::Send(e.to_string()))
}

/// Records what the agent says it applies, of the segments its groups give it (a stale or
/// made-up segment is not its drift).
async fn record_applied(
    pool: &PgPool,
    key: &AgentKey,
    applied: &BTreeMap<SegmentId, u64>,
) -> Result<(), sqlx::Error> {
    for (segment, version) in applied.iter().filter(|(_, v)| **v > 0) {
        sqlx::query(
            "INSERT INTO agent_segments (tenant_id, agent_id, segment_id, applied_version)
             SELECT $1, $2, $3, $4
             WHERE EXISTS (SELECT 1 FROM agents a
                           JOIN segment_rules r ON r.tenant_id = a.tenant_id
                                               AND r.group_name = ANY (a.groups)
                           WHERE a.tenant_id = $1 AND a.agent_id = $2 AND r.segment_id = $3)
             ON CONFLICT (tenant_id, agent_id, segment_id) DO UPDATE
             SET applied_version = EXCLUDED.applied_version, applied_at = now()
             WHERE agent_segments.applied_version IS DISTINCT FROM EXCLUDED.applied_version",
        )
        .bind(key.tenant.as_str())
        .bind(&key.agent)
        .bind(segment.as_str())
        .bind((*version).min(i64::MAX as u64) as i64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// For each segment, its latest version and the envelopes after what the agent applies (only
/// the latest where it applies nothing), oldest first, at most [`MAX_CATCH_UP`]: one query
/// for all of an agent's segments.
async fn versions_after(
    pool: &PgPool,
    tenant: &TenantId,
    segments: &BTreeSet<SegmentId>,
    applied: &BTreeMap<SegmentId, u64>,
) -> Result<Vec<SegmentVersions>, sqlx::Error> {
    let ids: Vec<&str> = segments.iter().map(SegmentId::as_str).collect();
    let after: Vec<Option<i64>> = segments
        .iter()
        .map(|s| applied.get(s).map(|v| (*v).min(i64::MAX as u64) as i64))
        .collect();
    let rows: Vec<(String, i64, Json<Vec<SignedEnvelope>>)> = sqlx::query_as(
        "SELECT w.segment_id, coalesce(s.latest_version, 0),
                coalesce((SELECT jsonb_agg(x.envelope ORDER BY x.version)
                          FROM (SELECT v.envelope, v.version FROM segment_versions v
                                WHERE v.tenant_id = $1 AND v.segment_id = w.segment_id
                                  AND v.version > coalesce(w.after, coalesce(s.latest_version, 0) - 1)
                                ORDER BY v.version LIMIT $4) x), '[]')
         FROM unnest($2::text[], $3::bigint[]) AS w (segment_id, after)
         LEFT JOIN segments s ON s.tenant_id = $1 AND s.segment_id = w.segment_id
         ORDER BY w.segment_id",
    )
    .bind(tenant.as_str())
    .bind(&ids)
    .bind(&after)
    .bind(MAX_CATCH_UP)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(segment, latest, envelopes)| {
            Ok(SegmentVersions {
                segment_id: SegmentId::parse(&segment)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                latest: latest.max(0) as u64,
                versions: envelopes.0,
            })
        })
        .collect()
}

/// Answers the agent with the segments its groups give it (versions after those it applies),
/// and forgets the drift of segments it no longer belongs to. Returns how many versions went.
async fn answer_segments(
    pool: &PgPool,
    publisher: &MqttPublisher,
    prefix: &str,
    key: &AgentKey,
    groups: &[String],
    applied: &BTreeMap<SegmentId, u64>,
) -> Result<usize, SessionError> {
    let segments = segmentation(pool, &key.tenant)
        .await
        .map_err(store)?
        .segments_for(groups);
    let current: Vec<&str> = segments.iter().map(SegmentId::as_str).collect();
    sqlx::query(
        "DELETE FROM agent_segments
         WHERE tenant_id = $1 AND agent_id = $2 AND segment_id <> ALL($3)",
    )
    .bind(key.tenant.as_str())
    .bind(&key.agent)
    .bind(&current)
    .execute(pool)
    .await
    .map_err(store)?;
    let reply = ConfigReply {
        protocol: AGENT_PROTOCOL,
        segments: versions_after(pool, &key.tenant, &segments, applied)
            .await
            .map_err(store)?,
        error: None,
    };
    let sent = reply.segments.iter().map(|s| s.versions.len()).sum();
    answer(publisher, prefix, key, &reply).await?;
    Ok(sent)
}

impl AgentStore for PgAgentStore {
    fn hello(
        &self,
        key: AgentKey,
        hello: Hello,
    ) -> impl std::future::Future<Output = Result<usize, SessionError>> + Send + 'static {
        let (pool, publisher, prefix) = self.handles();
        async move {
            // An enrolled agent's groups are the enrolled ones: what it says is not checked.
            let recorded: Result<Vec<String>, _> = sqlx::query_scalar(
                "INSERT INTO agents (tenant_id, agent_id, groups, online, last_seen_at)
                 VALUES ($1, $2, coalesce((SELECT groups FROM agent_enrollments
                                           WHERE tenant_id = $1 AND agent_id = $2), $3),
                         true, now())
                 ON CONFLICT (tenant_id, agent_id) DO UPDATE
                 SET groups = EXCLUDED.groups, online = true, last_seen_at = now()
                 RETURNING groups",
            )
            .bind(key.tenant.as_str())
            .bind(&key.agent)
            .bind(&hello.groups)
            .fetch_one(&pool)
            .await;
            let groups = match recorded {
                Err(e) if foreign_key_violation(&e) => {
                    let why = format!("tenant {} is not registered", key.tenant);
                    answer(&publisher, &prefix, &key, &ConfigReply::refusal(why)).await?;
                    return Ok(0);
                }
                other => other.map_err(store)?,
            };
            record_applied(&pool, &key, &hello.applied)
                .await
                .map_err(store)?;
            answer_segments(&pool, &publisher, &prefix, &key, &groups, &hello.applied).await
        }
    }

    fn reconfigure(
        &self,
        key: AgentKey,
    ) -> impl std::future::Future<Output = Result<usize, SessionError>> + Send + 'static {
        let (pool, publisher, prefix) = self.handles();
        async move {
            // Its groups as enrolled, or as it last said them; an agent never heard from has
            // no session to tell.
            let groups: Option<Vec<String>> = sqlx::query_scalar(
                "UPDATE agents a SET groups = coalesce(
                     (SELECT e.groups FROM agent_enrollments e
                      WHERE e.tenant_id = a.tenant_id AND e.agent_id = a.agent_id), a.groups)
                 WHERE a.tenant_id = $1 AND a.agent_id = $2
                 RETURNING a.groups",
            )
            .bind(key.tenant.as_str())
            .bind(&key.agent)
            .fetch_optional(&pool)
            .await
            .map_err(store)?;
            let Some(groups) = groups else {
                return Ok(0);
            };
            let applied: Vec<(String, i64)> = sqlx::query_as(
                "SELECT segment_id, applied_version FROM agent_segments
                 WHERE tenant_id = $1 AND agent_id = $2",
            )
            .bind(key.tenant.as_str())
            .bind(&key.agent)
            .fetch_all(&pool)
            .await
            .map_err(store)?;
            let applied: BTreeMap<SegmentId, u64> = applied
                .into_iter()
                .filter_map(|(s, v)| Some((SegmentId::parse(&s).ok()?, v.max(0) as u64)))
                .collect();
            answer_segments(&pool, &publisher, &prefix, &key, &groups, &applied).await
        }
    }

    fn status(
        &self,
        key: AgentKey,
        status: AgentStatus,
        replayed: bool,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send + 'static {
        let pool = self.pool.clone();
        async move {
            let recorded = sqlx::query(
                "INSERT INTO agents (tenant_id, agent_id, online, last_seen_at)
                 VALUES ($1, $2, $3, now())
                 ON CONFLICT (tenant_id, agent_id) DO UPDATE
                 SET online = EXCLUDED.online,
                     last_seen_at = CASE WHEN $4 THEN agents.last_seen_at ELSE now() END",
            )
            .bind(key.tenant.as_str())
            .bind(&key.agent)
            .bind(status.online)
            .bind(replayed)
            .execute(&pool)
            .await;
            match recorded {
                // An unregistered tenant's agent: nothing to record (its hello was refused).
                Err(e) if foreign_key_violation(&e) => return Ok(()),
                other => other.map_err(store)?,
            };
            record_applied(&pool, &key, &status.applied)
                .await
                .map_err(store)
        }
    }

    fn refuse(
        &self,
        key: AgentKey,
        why: String,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send + 'static {
        let (publisher, prefix) = (self.publisher.clone(), self.prefix.clone());
        async move { answer(&publisher, &prefix, &key, &ConfigReply::refusal(why)).await }
    }
}
