//! Agent identity on the broker: enrolling an agent gives it broker credentials bound to its
//! client id and a role confining it to its own topics (Mosquitto's dynamic security plugin),
//! and fixes its groups; revoking takes both away and disconnects it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use portcullis_engine::decode::valid_agent_id;
use portcullis_engine::distribution::{
    agent_broker_access, agent_client_id, agent_username, check_groups, engine_broker_access,
    AgentMessageError, ENGINE_ROLE,
};
use portcullis_engine::TenantId;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::error::foreign_key_violation;
use crate::config::MqttConfig;
use crate::records::TenantScope;
use crate::sinks::mqtt::{control_all, role_acls, BrokerAdminError};

/// How long to wait for the broker to answer a control message.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("tenant {0} is not registered (add it with `portcullis tenant add`)")]
    UnknownTenant(String),
    #[error("agent id {0:?} must be 1 to 128 characters of A-Z a-z 0-9 _ - ., starting with a letter or digit")]
    BadAgentId(String),
    #[error("an agent is enrolled in 1 to 100 groups: {0}")]
    BadGroups(String),
    #[error("[mqtt] username and password are not set: `portcullis broker setup` makes the engine's account with them")]
    NoEngineAccount,
    #[error("[mqtt] username and admin_username must differ: setup remakes the engine's account, which would delete the broker's admin")]
    SameAccount,
    #[error(transparent)]
    Broker(#[from] BrokerAdminError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<AgentMessageError> for EnrollmentError {
    fn from(e: AgentMessageError) -> Self {
        Self::BadGroups(e.to_string())
    }
}

/// What an enrolled agent connects with. The password is shown once and stored nowhere but
/// in the broker, as a hash.
#[derive(Clone, Serialize)]
pub struct AgentCredentials {
    pub tenant_id: String,
    pub agent_id: String,
    pub groups: Vec<String>,
    pub username: String,
    pub password: String,
    pub client_id: String,
}

/// Never prints the password.
impl std::fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("agent_id", &self.agent_id)
            .field("groups", &self.groups)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EnrollmentRow {
    pub tenant_id: String,
    pub agent_id: String,
    pub groups: Vec<String>,
    pub broker_username: String,
    pub enrolled_at: DateTime<Utc>,
    pub enrolled_by: String,
}

/// Deleting what is not there is fine (a first enrollment, a repeated revoke); nothing else is.
fn not_found(command: &str, error: &str) -> bool {
    command.starts_with("delete") && error.contains("not found")
}

/// Makes the engine's account (`[mqtt] username` and password) with the right to publish and
/// subscribe under the prefix, and sets the plugin's default access to deny publishing,
/// subscribing and receiving (so roles grant exactly what they list). Safe to repeat (a running engine is
/// disconnected once and reconnects); run once per broker (`portcullis broker setup`).
pub async fn setup_broker(mqtt: &MqttConfig) -> Result<(), EnrollmentError> {
    let (Some(username), Some(password)) = (&mqtt.username, &mqtt.password) else {
        return Err(EnrollmentError::NoEngineAccount);
    };
    if mqtt.admin_username.as_ref() == Some(username) {
        return Err(EnrollmentError::SameAccount);
    }
    let engine = engine_broker_access(&mqtt.topic_prefix);
    let commands = vec![
        json!({"command": "setDefaultACLAccess", "acls": [
            {"acltype": "publishClientSend", "allow": false},
            {"acltype": "publishClientReceive", "allow": false},
            {"acltype": "subscribe", "allow": false},
            {"acltype": "unsubscribe", "allow": true},
        ]}),
        json!({"command": "deleteClient", "username": username}),
        json!({"command": "deleteRole", "rolename": ENGINE_ROLE}),
        json!({"command": "createRole", "rolename": ENGINE_ROLE, "acls": role_acls(&engine)}),
        json!({"command": "createClient", "username": username, "password": password,
               "roles": [{"rolename": ENGINE_ROLE}]}),
    ];
    control_all(mqtt, commands, CONTROL_TIMEOUT, not_found).await?;
    Ok(())
}

/// Enrolls (or re-enrolls, with a new password) `agent` of `tenant` in `groups`. The broker is
/// changed inside the transaction that records the enrollment, so a refused broker change
/// records nothing; should the commit fail after it, enrolling again mends it.
pub async fn enroll_agent(
    pool: &PgPool,
    mqtt: &MqttConfig,
    tenant: &TenantId,
    agent: &str,
    groups: Vec<String>,
    enrolled_by: &str,
) -> Result<AgentCredentials, EnrollmentError> {
    if !valid_agent_id(agent) {
        return Err(EnrollmentError::BadAgentId(
            agent.chars().take(140).collect(),
        ));
    }
    if groups.is_empty() {
        return Err(EnrollmentError::BadGroups("no group given".into()));
    }
    check_groups(&groups)?;
    let username = agent_username(tenant, agent);
    let client_id = agent_client_id(tenant, agent);
    let password = new_password();

    let mut tx = pool.begin().await?;
    let recorded = sqlx::query(
        "INSERT INTO agent_enrollments (tenant_id, agent_id, groups, broker_username, enrolled_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, agent_id) DO UPDATE
         SET groups = EXCLUDED.groups, enrolled_at = now(), enrolled_by = EXCLUDED.enrolled_by",
    )
    .bind(tenant.as_str())
    .bind(agent)
    .bind(&groups)
    .bind(&username)
    .bind(enrolled_by)
    .execute(&mut *tx)
    .await;
    match recorded {
        Err(e) if foreign_key_violation(&e) => {
            return Err(EnrollmentError::UnknownTenant(tenant.to_string()))
        }
        other => other?,
    };
    let access = agent_broker_access(&mqtt.topic_prefix, tenant, agent);
    // Deleting the client first disconnects an agent enrolled before (a new password).
    let commands: Vec<Value> = vec![
        json!({"command": "deleteClient", "username": username}),
        json!({"command": "deleteRole", "rolename": access.role}),
        json!({"command": "createRole", "rolename": access.role, "acls": role_acls(&access)}),
        json!({"command": "createClient", "username": username, "password": password,
               "clientid": client_id, "roles": [{"rolename": access.role}]}),
    ];
    control_all(mqtt, commands, CONTROL_TIMEOUT, not_found).await?;
    tx.commit().await?;
    Ok(AgentCredentials {
        tenant_id: tenant.to_string(),
        agent_id: agent.to_owned(),
        groups,
        username,
        password,
        client_id,
    })
}

/// Takes an agent's credentials and role away (disconnecting it) and forgets its enrollment.
/// `false` if it was not enrolled.
pub async fn revoke_agent(
    pool: &PgPool,
    mqtt: &MqttConfig,
    tenant: &TenantId,
    agent: &str,
) -> Result<bool, EnrollmentError> {
    if !valid_agent_id(agent) {
        return Err(EnrollmentError::BadAgentId(
            agent.chars().take(140).collect(),
        ));
    }
    let mut tx = pool.begin().await?;
    let removed =
        sqlx::query("DELETE FROM agent_enrollments WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.as_str())
            .bind(agent)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let access = agent_broker_access(&mqtt.topic_prefix, tenant, agent);
    let commands = vec![
        json!({"command": "deleteClient", "username": agent_username(tenant, agent)}),
        json!({"command": "deleteRole", "rolename": access.role}),
    ];
    control_all(mqtt, commands, CONTROL_TIMEOUT, not_found).await?;
    tx.commit().await?;
    Ok(removed > 0)
}

/// Enrolled agents of the tenants in `scope` (all when `None`), by tenant and id.
pub async fn list_enrollments(
    pool: &PgPool,
    scope: &TenantScope,
) -> Result<Vec<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, agent_id, groups, broker_username, enrolled_at, enrolled_by
         FROM agent_enrollments
         WHERE $1::text[] IS NULL OR tenant_id = ANY($1)
         ORDER BY tenant_id, agent_id",
    )
    .bind(scope.ids())
    .fetch_all(pool)
    .await
}

/// 32 random bytes, URL-safe base64: typed nowhere, so long.
fn new_password() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}
