//! The error of the data services (search, export, erasure, retention).

use crate::ports::StoreError;

/// Failure of a search, an export, an erasure or a retention sweep.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The chat named does not exist for this user (another user's is reported the same way).
    #[error("chat not found")]
    NotFound,
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

impl From<StoreError> for DataError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DataError::NotFound,
            StoreError::Unavailable(e) => DataError::Unavailable(e),
            StoreError::Conflict => {
                DataError::Unknown(anyhow::anyhow!("unresolved write conflict"))
            }
            StoreError::ChatBusy => DataError::Unknown(anyhow::anyhow!("unexpected busy chat")),
            StoreError::Unknown(e) => DataError::Unknown(e),
        }
    }
}
