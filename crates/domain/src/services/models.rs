//! The model registry as the services use it: listing the models on offer, checking
//! that a chat's model is listed before a turn, bounding `maxTokens` by the model's
//! ceiling, and naming the provider of a reply's model in its events.

use super::messages::Inner;
use super::{Actor, SendError};
use crate::model::{Chat, ChatSettings, Event, ModelChoiceError, ModelList};
use crate::ports::ModelCatalog;
use std::sync::Arc;

/// The models a caller may use.
#[derive(Clone)]
pub struct ModelService {
    catalog: Arc<dyn ModelCatalog>,
}

impl std::fmt::Debug for ModelService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelService").finish_non_exhaustive()
    }
}

impl ModelService {
    /// A service over a catalog.
    pub fn new(catalog: Arc<dyn ModelCatalog>) -> Self {
        Self { catalog }
    }

    /// The models the actor may use now, the default among them. (Every caller may
    /// use every listed model; the actor is taken so that per-user lists can follow.)
    pub fn list(&self, _actor: &Actor) -> Arc<ModelList> {
        self.catalog.models()
    }
}

/// Checks settings against a catalog, when there is one.
pub(crate) fn check_settings(
    catalog: Option<&Arc<dyn ModelCatalog>>,
    settings: &ChatSettings,
) -> Result<(), ModelChoiceError> {
    match catalog {
        Some(c) => c.models().check_settings(settings),
        None => Ok(()),
    }
}

impl Inner {
    /// The name of the model a reply in `chat` is asked of: the chat's own, else the
    /// catalog's default, else the configured default.
    pub(crate) fn model_name_for(&self, chat: &Chat) -> String {
        if let Some(m) = &chat.settings().model {
            return m.as_str().to_owned();
        }
        self.catalog
            .as_ref()
            .and_then(|c| {
                c.models()
                    .default_model()
                    .map(|m| m.name().as_str().to_owned())
            })
            .unwrap_or_else(|| self.config.default_model.clone())
    }

    /// Refuses a turn whose model is not listed (or when nothing is listed at all),
    /// before anything is stored.
    pub(crate) fn check_model(&self, chat: &Chat) -> Result<(), SendError> {
        match &self.catalog {
            Some(c) => c
                .models()
                .model_for(chat.settings())
                .map(|_| ())
                .map_err(SendError::Model),
            None => Ok(()),
        }
    }

    /// The `max_tokens` to ask for: the chat's, never above the model's ceiling (which
    /// may have been lowered since the chat was set up).
    pub(crate) fn max_tokens_for(&self, model: &str, asked: Option<u32>) -> Option<u32> {
        let ceiling = self
            .catalog
            .as_ref()
            .and_then(|c| c.models().find(model).map(|m| m.max_output_tokens()));
        match (asked, ceiling) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, _) => a,
        }
    }

    /// The event, naming the provider of the reply's model when the catalog knows it.
    pub(crate) fn tag_provider(&self, event: Event) -> Event {
        let provider = match (&self.catalog, event.reply_model()) {
            (Some(c), Some(model)) => c
                .models()
                .find(model)
                .map(|m| m.provider().as_str().to_owned()),
            _ => None,
        };
        match provider {
            Some(p) => event.with_provider(Some(p)),
            None => event,
        }
    }
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
