//! The model catalog's values: which models a caller may use, which provider serves
//! each, its output-token ceiling and its fallbacks; and the rules a chat's settings
//! must follow against it.

use super::chat::{ChatSettings, MaxTokens, ModelName};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The name of a configured provider: 1 to 64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName(String);

/// Why a provider name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a provider name must be 1-{} letters, digits, '.', '_' or '-'",
    ProviderName::MAX_LEN
)]
pub struct ProviderNameError;

impl ProviderName {
    /// Longest provider name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks a provider name.
    pub fn parse(s: &str) -> Result<Self, ProviderNameError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ProviderNameError)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProviderName {
    type Error = ProviderNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ProviderName> for String {
    fn from(p: ProviderName) -> Self {
        p.0
    }
}

/// One model callers may use. Built only from valid parts; later facts about a model
/// (a price, a purpose) belong here as further fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    name: ModelName,
    provider: ProviderName,
    max_output_tokens: u32,
    fallbacks: Vec<ModelName>,
}

impl ModelInfo {
    /// The output-token ceiling of a model whose configuration sets none.
    pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 32_768;

    /// A model served by `provider`, with the default ceiling and no fallbacks.
    pub fn new(name: ModelName, provider: ProviderName) -> Self {
        Self {
            name,
            provider,
            max_output_tokens: Self::DEFAULT_MAX_OUTPUT_TOKENS,
            fallbacks: Vec::new(),
        }
    }

    /// The same model with this output-token ceiling.
    #[must_use]
    pub fn with_max_output_tokens(mut self, ceiling: MaxTokens) -> Self {
        self.max_output_tokens = ceiling.value();
        self
    }

    /// The same model with these fallbacks, tried in order when it fails before its
    /// first token. The model itself and repeated names are left out.
    #[must_use]
    pub fn with_fallbacks(mut self, fallbacks: impl IntoIterator<Item = ModelName>) -> Self {
        let mut out: Vec<ModelName> = Vec::new();
        for f in fallbacks {
            if f != self.name && !out.contains(&f) {
                out.push(f);
            }
        }
        self.fallbacks = out;
        self
    }

    /// Its name, as callers write it in a chat's settings and the provider knows it.
    pub fn name(&self) -> &ModelName {
        &self.name
    }

    /// The provider that serves it.
    pub fn provider(&self) -> &ProviderName {
        &self.provider
    }

    /// The largest `maxTokens` a chat may set for it.
    pub fn max_output_tokens(&self) -> u32 {
        self.max_output_tokens
    }

    /// The models tried, in order, when it fails before its first token.
    pub fn fallbacks(&self) -> &[ModelName] {
        &self.fallbacks
    }
}

/// Why a list of models could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelListError {
    /// Two entries have the same name.
    #[error("the model {0:?} is listed twice")]
    Duplicate(String),
}

/// The models callers may use right now, in a stable order, and the default one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelList {
    models: Vec<ModelInfo>,
    default: Option<usize>,
}

impl ModelList {
    /// A list of `models` (names unique). The default is `default` when it is listed,
    /// else the first model; an empty list has no default.
    pub fn new(
        models: Vec<ModelInfo>,
        default: Option<&ModelName>,
    ) -> Result<Self, ModelListError> {
        for (i, m) in models.iter().enumerate() {
            if models[..i].iter().any(|o| o.name == m.name) {
                return Err(ModelListError::Duplicate(m.name.as_str().to_owned()));
            }
        }
        let chosen = default.and_then(|d| models.iter().position(|m| &m.name == d));
        let default = chosen.or(if models.is_empty() { None } else { Some(0) });
        Ok(Self { models, default })
    }

    /// Every model, in order.
    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }

    /// The model with this name, if listed.
    pub fn find(&self, name: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.name.as_str() == name)
    }

    /// The model used when a chat sets none; `None` only when the list is empty.
    pub fn default_model(&self) -> Option<&ModelInfo> {
        self.default.and_then(|i| self.models.get(i))
    }

    /// Whether `name` is the default model.
    pub fn is_default(&self, name: &str) -> bool {
        self.default_model()
            .is_some_and(|m| m.name.as_str() == name)
    }

    /// The listed names, in order (what a refusal offers instead).
    pub fn choices(&self) -> Vec<String> {
        self.models
            .iter()
            .map(|m| m.name.as_str().to_owned())
            .collect()
    }

    /// The model a chat with these settings uses: its own, else the default.
    pub fn model_for(&self, settings: &ChatSettings) -> Result<&ModelInfo, ModelChoiceError> {
        match &settings.model {
            Some(name) => self
                .find(name.as_str())
                .ok_or_else(|| ModelChoiceError::NotListed {
                    model: name.as_str().to_owned(),
                    choices: self.choices(),
                }),
            None => self.default_model().ok_or(ModelChoiceError::NoModel),
        }
    }

    /// Checks a chat's settings: its model (when set) must be listed, and its
    /// `maxTokens` (when set) must not exceed that model's ceiling (the default
    /// model's, when the chat sets no model). With an empty list and no model set,
    /// there is nothing to check against, and the settings pass.
    pub fn check_settings(&self, settings: &ChatSettings) -> Result<(), ModelChoiceError> {
        let model = match self.model_for(settings) {
            Ok(m) => m,
            Err(ModelChoiceError::NoModel) => return Ok(()),
            Err(e) => return Err(e),
        };
        match settings.max_tokens {
            Some(n) if n.value() > model.max_output_tokens() => {
                Err(ModelChoiceError::AboveCeiling {
                    model: model.name.as_str().to_owned(),
                    requested: n.value(),
                    ceiling: model.max_output_tokens(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Why a chat's model choice was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelChoiceError {
    /// The model is not listed.
    #[error("the model {model:?} is not offered; choose one of: {}", choices.join(", "))]
    NotListed {
        /// The refused name.
        model: String,
        /// The listed names.
        choices: Vec<String>,
    },
    /// `maxTokens` exceeds the model's output-token ceiling.
    #[error(
        "maxTokens {requested} is above the ceiling of the model {model:?}: at most {ceiling}"
    )]
    AboveCeiling {
        /// The model.
        model: String,
        /// What the chat asked for.
        requested: u32,
        /// The model's ceiling.
        ceiling: u32,
    },
    /// No model is listed at all (every provider discovers its models and none has answered yet).
    #[error("no model is available right now")]
    NoModel,
}

impl ModelChoiceError {
    /// The request field at fault, as a dotted path.
    pub fn field(&self) -> &'static str {
        match self {
            ModelChoiceError::NotListed { .. } | ModelChoiceError::NoModel => "settings.model",
            ModelChoiceError::AboveCeiling { .. } => "settings.maxTokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    fn info(n: &str, p: &str) -> ModelInfo {
        ModelInfo::new(name(n), ProviderName::parse(p).unwrap())
    }

    fn list() -> ModelList {
        ModelList::new(
            vec![
                info("a", "one").with_max_output_tokens(MaxTokens::new(100).unwrap()),
                info("b", "two"),
            ],
            Some(&name("b")),
        )
        .unwrap()
    }

    fn settings(model: Option<&str>, max: Option<u32>) -> ChatSettings {
        ChatSettings {
            model: model.map(name),
            max_tokens: max.map(|n| MaxTokens::new(n).unwrap()),
            ..ChatSettings::default()
        }
    }

    #[test]
    fn provider_names() {
        assert!(ProviderName::parse("openai").is_ok());
        assert!(ProviderName::parse("local-ollama_2.x").is_ok());
        assert!(ProviderName::parse("").is_err());
        assert!(ProviderName::parse("a b").is_err());
        assert!(ProviderName::parse("a/b").is_err());
        assert!(ProviderName::parse(&"p".repeat(65)).is_err());
        assert!(serde_json::from_str::<ProviderName>("\"a b\"").is_err());
    }

    #[test]
    fn a_new_model_has_the_documented_default_ceiling() {
        assert_eq!(info("m", "p").max_output_tokens(), 32_768);
    }

    #[test]
    fn fallbacks_leave_out_the_model_itself_and_repeats() {
        let m = info("a", "p").with_fallbacks([name("a"), name("b"), name("b"), name("c")]);
        let f: Vec<_> = m.fallbacks().iter().map(ModelName::as_str).collect();
        assert_eq!(f, ["b", "c"]);
    }

    #[test]
    fn names_are_unique() {
        let e = ModelList::new(vec![info("a", "one"), info("a", "two")], None);
        assert_eq!(e, Err(ModelListError::Duplicate("a".into())));
    }

    #[test]
    fn the_default_is_the_named_one_else_the_first() {
        assert_eq!(list().default_model().map(|m| m.name().as_str()), Some("b"));
        let l = ModelList::new(vec![info("a", "p")], Some(&name("zz"))).unwrap();
        assert_eq!(l.default_model().map(|m| m.name().as_str()), Some("a"));
        assert!(ModelList::default().default_model().is_none());
        assert!(list().is_default("b") && !list().is_default("a"));
    }

    #[test]
    fn an_unlisted_model_is_refused_with_the_choices() {
        let e = list().check_settings(&settings(Some("junk"), None));
        assert_eq!(
            e,
            Err(ModelChoiceError::NotListed {
                model: "junk".into(),
                choices: vec!["a".into(), "b".into()]
            })
        );
        let text = e.unwrap_err().to_string();
        assert!(text.contains("a, b"), "{text}");
    }

    #[test]
    fn max_tokens_is_checked_against_the_models_ceiling() {
        assert!(list()
            .check_settings(&settings(Some("a"), Some(100)))
            .is_ok());
        let e = list()
            .check_settings(&settings(Some("a"), Some(101)))
            .unwrap_err();
        assert_eq!(e.field(), "settings.maxTokens");
        // No model set: the default model's ceiling (b: 32,768).
        assert!(list().check_settings(&settings(None, Some(32_768))).is_ok());
        assert!(list()
            .check_settings(&settings(None, Some(32_769)))
            .is_err());
    }

    #[test]
    fn an_empty_list_checks_nothing_it_cannot() {
        let empty = ModelList::default();
        assert!(empty.check_settings(&settings(None, Some(5))).is_ok());
        assert!(empty.check_settings(&settings(Some("a"), None)).is_err());
        assert_eq!(
            empty.model_for(&settings(None, None)),
            Err(ModelChoiceError::NoModel)
        );
    }
}
