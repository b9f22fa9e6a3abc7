//! The provider router: an `LlmClient` that sends each request to the client of the
//! provider serving its model, as the catalog says (translation only: no retry or
//! fallback decision is taken here).

use async_trait::async_trait;
use domain::model::ProviderName;
use domain::ports::{LlmClient, LlmError, LlmReply, LlmRequest, LlmStream, ModelCatalog};
use std::collections::HashMap;
use std::sync::Arc;

/// Routes by model to one client per provider.
pub struct ProviderRouter {
    catalog: Arc<dyn ModelCatalog>,
    providers: HashMap<ProviderName, Arc<dyn LlmClient>>,
}

impl std::fmt::Debug for ProviderRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRouter")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProviderRouter {
    /// A router over `providers`, by the catalog's model → provider map.
    pub fn new(
        catalog: Arc<dyn ModelCatalog>,
        providers: HashMap<ProviderName, Arc<dyn LlmClient>>,
    ) -> Self {
        Self { catalog, providers }
    }

    fn route(&self, model: &str) -> Result<Arc<dyn LlmClient>, LlmError> {
        let list = self.catalog.models();
        list.find(model)
            .and_then(|m| self.providers.get(m.provider()))
            .cloned()
            .ok_or_else(|| {
                LlmError::BadRequest(format!(
                    "the model {model:?} is not offered by any configured provider"
                ))
            })
    }
}

#[async_trait]
impl LlmClient for ProviderRouter {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        self.route(&request.model)?.complete(request).await
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        self.route(&request.model)?.stream(request).await
    }
}
