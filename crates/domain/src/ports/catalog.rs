//! The model catalog port: the models callers may use right now (static lists and
//! what providers report), read by the services that validate and route requests.

use crate::model::ModelList;
use std::sync::Arc;

/// The models on offer. An adapter may change its list at any time (a provider's
/// model list is re-read periodically); each call returns a consistent snapshot.
///
/// Contract (checked by the catalog contract suite against every adapter): the
/// snapshot's names are unique, its default is one of its models whenever it has
/// any, and two calls without a change in between return equal lists.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ModelCatalog: Send + Sync {
    /// The current list.
    fn models(&self) -> Arc<ModelList>;
}

/// A catalog whose list never changes (for libraries, tests and fixed configurations).
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog(Arc<ModelList>);

impl StaticCatalog {
    /// A catalog of this list.
    pub fn new(list: ModelList) -> Self {
        Self(Arc::new(list))
    }
}

impl ModelCatalog for StaticCatalog {
    fn models(&self) -> Arc<ModelList> {
        self.0.clone()
    }
}
