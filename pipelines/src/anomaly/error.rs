//! Why a training session or model change was refused.

use portcullis_engine::anomaly::{ModelError, ModelScope};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("tenant {0} is not registered (add it with `portcullis tenant add`)")]
    UnknownTenant(String),
    #[error("a training session is already active for {tenant}/{scope}: {session} (stop it, or force-close it)")]
    AlreadyActive {
        tenant: String,
        scope: ModelScope,
        session: Uuid,
    },
    #[error("no training session is active for {tenant}/{scope}")]
    NoneActive { tenant: String, scope: ModelScope },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
