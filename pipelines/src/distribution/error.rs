//! Why a distribution change was refused.

use portcullis_engine::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("tenant {0} is not registered (add it with `portcullis tenant add`)")]
    UnknownTenant(String),
    #[error("a segment policy needs at least one Rego module")]
    NoModules,
    #[error("the segment policy is refused: {0}")]
    Policy(PolicyError),
    #[error(
        "the signed segment policy is {size} bytes; distribution.max_policy_bytes allows {max}"
    )]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub(super) use crate::sinks::postgres::error_codes::foreign_key_violation;
