//! The `ModelCatalog` adapter: the configured providers' fixed model lists plus what
//! discovery last read from each provider's `GET /models`, merged into one list.

use domain::model::{MaxTokens, ModelInfo, ModelList, ModelName, ProviderName};
use domain::ports::ModelCatalog;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Settings of one model; unset fields come from [`CatalogConfig::per_model`], then
/// the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSettings {
    /// Largest `maxTokens` a chat may set for it.
    pub max_output_tokens: Option<MaxTokens>,
    /// Models tried, in order, when it fails before its first token.
    pub fallbacks: Option<Vec<ModelName>>,
}

/// A model of a provider's fixed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Its name.
    pub name: ModelName,
    /// Its own settings.
    pub settings: ModelSettings,
}

/// The models of one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderModels {
    /// The provider.
    pub provider: ProviderName,
    /// Models always listed.
    pub fixed: Vec<ModelSpec>,
    /// Whether the provider's `GET /models` adds to them.
    pub discover: bool,
}

/// What the catalog is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// The providers, in order: a model name listed by two providers belongs to the first.
    pub providers: Vec<ProviderModels>,
    /// The default model; when it is not listed (yet), the first listed model.
    pub default_model: Option<ModelName>,
    /// The ceiling of models that set none; `None` = [`ModelInfo::DEFAULT_MAX_OUTPUT_TOKENS`].
    pub default_max_output_tokens: Option<MaxTokens>,
    /// Settings by model name, for any model (fixed or discovered) that does not set them itself.
    pub per_model: HashMap<String, ModelSettings>,
}

impl CatalogConfig {
    /// A catalog of these providers with the documented default ceiling and no default model.
    pub fn new(providers: Vec<ProviderModels>) -> Self {
        Self {
            providers,
            default_model: None,
            default_max_output_tokens: None,
            per_model: HashMap::new(),
        }
    }

    /// Just the embedded echo model (what runs with nothing configured).
    pub fn echo() -> Self {
        let provider = ProviderName::parse(crate::EchoModel::NAME).ok();
        let name = ModelName::parse(crate::EchoModel::NAME).ok();
        let providers = match (provider, name) {
            (Some(provider), Some(name)) => vec![ProviderModels {
                provider,
                fixed: vec![ModelSpec {
                    name,
                    settings: ModelSettings::default(),
                }],
                discover: false,
            }],
            _ => Vec::new(),
        };
        Self::new(providers)
    }
}

/// The catalog: fixed lists plus the latest discovered ones. Cheap to read (a
/// snapshot behind a lock, rebuilt only when a discovered list changes).
#[derive(Debug)]
pub struct ProviderCatalog {
    config: CatalogConfig,
    discovered: Mutex<HashMap<ProviderName, Vec<ModelName>>>,
    current: RwLock<Arc<ModelList>>,
}

impl ProviderCatalog {
    /// A catalog of the fixed lists (discovered lists are added with [`Self::set_discovered`]).
    pub fn new(config: CatalogConfig) -> Self {
        let catalog = Self {
            config,
            discovered: Mutex::new(HashMap::new()),
            current: RwLock::new(Arc::new(ModelList::default())),
        };
        catalog.rebuild(&HashMap::new());
        catalog
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// Replaces what `provider`'s `GET /models` lists; says whether the catalog changed.
    pub fn set_discovered(&self, provider: &ProviderName, models: Vec<ModelName>) -> bool {
        let mut discovered = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        if discovered.get(provider) == Some(&models) {
            return false;
        }
        discovered.insert(provider.clone(), models);
        self.rebuild(&discovered);
        true
    }

    /// What `provider` last listed, if it ever answered.
    pub fn discovered(&self, provider: &ProviderName) -> Option<Vec<ModelName>> {
        self.discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
            .cloned()
    }

    fn info(&self, provider: &ProviderName, name: &ModelName, own: &ModelSettings) -> ModelInfo {
        let shared = self.config.per_model.get(name.as_str());
        let ceiling = own
            .max_output_tokens
            .or_else(|| shared.and_then(|s| s.max_output_tokens))
            .or(self.config.default_max_output_tokens);
        let fallbacks = own
            .fallbacks
            .clone()
            .or_else(|| shared.and_then(|s| s.fallbacks.clone()))
            .unwrap_or_default();
        let info = ModelInfo::new(name.clone(), provider.clone()).with_fallbacks(fallbacks);
        match ceiling {
            Some(c) => info.with_max_output_tokens(c),
            None => info,
        }
    }

    fn rebuild(&self, discovered: &HashMap<ProviderName, Vec<ModelName>>) {
        let mut models: Vec<ModelInfo> = Vec::new();
        let none = ModelSettings::default();
        for p in &self.config.providers {
            let fixed = p.fixed.iter().map(|m| (&m.name, &m.settings));
            let found = discovered
                .get(&p.provider)
                .filter(|_| p.discover)
                .into_iter()
                .flatten()
                .map(|n| (n, &none));
            for (name, settings) in fixed.chain(found) {
                if models.iter().any(|m| m.name() == name) {
                    continue;
                }
                models.push(self.info(&p.provider, name, settings));
            }
        }
        // Names are unique by construction, so this cannot fail.
        let list = ModelList::new(models, self.config.default_model.as_ref()).unwrap_or_default();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
    }
}

impl ModelCatalog for ProviderCatalog {
    fn models(&self) -> Arc<ModelList> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    fn p(s: &str) -> ProviderName {
        ProviderName::parse(s).unwrap()
    }

    fn spec(name: &str) -> ModelSpec {
        ModelSpec {
            name: n(name),
            settings: ModelSettings::default(),
        }
    }

    fn config() -> CatalogConfig {
        let mut c = CatalogConfig::new(vec![
            ProviderModels {
                provider: p("cloud"),
                fixed: vec![
                    ModelSpec {
                        name: n("big"),
                        settings: ModelSettings {
                            max_output_tokens: Some(MaxTokens::new(4096).unwrap()),
                            fallbacks: Some(vec![n("llama")]),
                        },
                    },
                    spec("mini"),
                ],
                discover: false,
            },
            ProviderModels {
                provider: p("local"),
                fixed: vec![],
                discover: true,
            },
        ]);
        c.default_model = Some(n("mini"));
        c.per_model.insert(
            "llama".into(),
            ModelSettings {
                max_output_tokens: Some(MaxTokens::new(2048).unwrap()),
                fallbacks: Some(vec![n("mini")]),
            },
        );
        c
    }

    #[test]
    fn fixed_models_with_their_settings_and_the_default() {
        let c = ProviderCatalog::new(config());
        let list = c.models();
        assert_eq!(list.choices(), ["big", "mini"]);
        let big = list.find("big").unwrap();
        assert_eq!(big.max_output_tokens(), 4096);
        assert_eq!(big.provider().as_str(), "cloud");
        assert_eq!(list.find("mini").unwrap().max_output_tokens(), 32_768);
        assert!(list.is_default("mini"));
    }

    #[test]
    fn discovered_models_are_added_with_shared_settings_and_duplicates_stay_with_the_first() {
        let c = ProviderCatalog::new(config());
        assert!(c.set_discovered(&p("local"), vec![n("llama"), n("mini")]));
        let list = c.models();
        assert_eq!(list.choices(), ["big", "mini", "llama"]);
        let llama = list.find("llama").unwrap();
        assert_eq!(llama.provider().as_str(), "local");
        assert_eq!(llama.max_output_tokens(), 2048);
        assert_eq!(llama.fallbacks(), [n("mini")]);
        assert_eq!(list.find("mini").unwrap().provider().as_str(), "cloud");
        assert!(!c.set_discovered(&p("local"), vec![n("llama"), n("mini")]));
        assert_eq!(c.discovered(&p("local")).map(|l| l.len()), Some(2));
    }

    #[test]
    fn a_provider_without_discovery_ignores_discovered_lists() {
        let c = ProviderCatalog::new(config());
        c.set_discovered(&p("cloud"), vec![n("sneaky")]);
        assert!(c.models().find("sneaky").is_none());
    }

    #[test]
    fn the_echo_catalog() {
        let list = ProviderCatalog::new(CatalogConfig::echo()).models();
        assert_eq!(list.choices(), ["echo"]);
        assert!(list.is_default("echo"));
    }
}
