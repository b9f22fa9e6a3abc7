//! A chat's title and its generation settings (the entity is in `chat_entity`).

use serde::{Deserialize, Serialize};

/// A chat's title: 1 to 200 characters after trimming white space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatTitle(String);

/// Why a chat title was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatTitleError {
    /// Empty, or only white space.
    #[error("the title is empty")]
    Empty,
    /// More than [`ChatTitle::MAX_CHARS`] characters after trimming.
    #[error("the title is longer than {} characters", ChatTitle::MAX_CHARS)]
    TooLong,
    /// Contains a control character (such as a newline).
    #[error("the title contains a control character")]
    ControlCharacter,
}

impl ChatTitle {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 200;
    /// The title a chat gets when none is given.
    pub const DEFAULT: &'static str = "New chat";

    /// Trims and checks a title.
    pub fn parse(s: &str) -> Result<Self, ChatTitleError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ChatTitleError::Empty);
        }
        if t.chars().count() > Self::MAX_CHARS {
            return Err(ChatTitleError::TooLong);
        }
        if t.chars().any(char::is_control) {
            return Err(ChatTitleError::ControlCharacter);
        }
        Ok(Self(t.to_owned()))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ChatTitle {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl TryFrom<String> for ChatTitle {
    type Error = ChatTitleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ChatTitle> for String {
    fn from(t: ChatTitle) -> Self {
        t.0
    }
}

/// Why a chat setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The model name is empty, too long or has characters outside `[A-Za-z0-9._:/@+-]`.
    #[error(
        "the model name must be 1-{} characters of letters, digits and . _ : / @ + -",
        ModelName::MAX_LEN
    )]
    BadModel,
    /// The system prompt is longer than [`SystemPrompt::MAX_CHARS`].
    #[error(
        "the system prompt is longer than {} characters",
        SystemPrompt::MAX_CHARS
    )]
    SystemPromptTooLong,
    /// The system prompt contains a NUL character, which no storage keeps faithfully.
    #[error("the system prompt contains a NUL character")]
    SystemPromptNul,
    /// The temperature is not a number between 0 and 2.
    #[error("the temperature must be between 0 and 2")]
    TemperatureOutOfRange,
    /// The token limit is not between 1 and [`MaxTokens::MAX`].
    #[error("maxTokens must be between 1 and {}", MaxTokens::MAX)]
    MaxTokensOutOfRange,
}

/// The name of an LLM model, as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    /// Longest model name, in bytes.
    pub const MAX_LEN: usize = 100;
    /// The characters allowed besides ASCII letters and digits.
    pub const PUNCTUATION: &'static str = "._:/@+-";

    /// Checks a model name.
    pub fn parse(s: &str) -> Result<Self, SettingsError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || Self::PUNCTUATION.contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(SettingsError::BadModel)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ModelName {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ModelName> for String {
    fn from(m: ModelName) -> Self {
        m.0
    }
}

/// The system prompt sent first with every request of a chat (at most 20,000
/// characters, no NUL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SystemPrompt(String);

impl SystemPrompt {
    /// Longest system prompt, in characters.
    pub const MAX_CHARS: usize = 20_000;

    /// Checks a system prompt. An empty prompt is allowed and means "none".
    pub fn parse(s: &str) -> Result<Self, SettingsError> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(SettingsError::SystemPromptTooLong);
        }
        if s.contains('\0') {
            return Err(SettingsError::SystemPromptNul);
        }
        Ok(Self(s.to_owned()))
    }

    /// The prompt as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SystemPrompt {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SystemPrompt> for String {
    fn from(p: SystemPrompt) -> Self {
        p.0
    }
}

/// Sampling temperature, 0 to 2 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Temperature(f64);

impl Temperature {
    /// Lowest accepted value.
    pub const MIN: f64 = 0.0;
    /// Highest accepted value.
    pub const MAX: f64 = 2.0;

    /// Checks a temperature.
    pub fn new(t: f64) -> Result<Self, SettingsError> {
        if t.is_finite() && (Self::MIN..=Self::MAX).contains(&t) {
            Ok(Self(t))
        } else {
            Err(SettingsError::TemperatureOutOfRange)
        }
    }

    /// The value.
    pub fn value(&self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Temperature {
    type Error = SettingsError;
    fn try_from(t: f64) -> Result<Self, Self::Error> {
        Self::new(t)
    }
}

impl From<Temperature> for f64 {
    fn from(t: Temperature) -> Self {
        t.0
    }
}

/// Largest reply, in tokens: 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxTokens(u32);

impl MaxTokens {
    /// Highest accepted value.
    pub const MAX: u32 = 1_000_000;

    /// Checks a token limit.
    pub fn new(n: u32) -> Result<Self, SettingsError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(SettingsError::MaxTokensOutOfRange)
        }
    }

    /// The value.
    pub fn value(&self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for MaxTokens {
    type Error = SettingsError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<MaxTokens> for u32 {
    fn from(n: MaxTokens) -> Self {
        n.0
    }
}

/// How replies in a chat are generated. Every field is optional; an unset field
/// means "the service default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    /// The model; the service's default model when unset.
    pub model: Option<ModelName>,
    /// Sent as the first, `system`, message of every request.
    pub system_prompt: Option<SystemPrompt>,
    /// Sampling temperature.
    pub temperature: Option<Temperature>,
    /// Largest reply, in tokens.
    pub max_tokens: Option<MaxTokens>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn title_is_trimmed() {
        assert_eq!(
            ChatTitle::parse("  hi  ").map(String::from),
            Ok("hi".into())
        );
    }

    #[test]
    fn empty_title_is_refused() {
        assert_eq!(ChatTitle::parse(" \t "), Err(ChatTitleError::Empty));
    }

    #[test]
    fn title_of_200_chars_is_fine_201_is_not() {
        assert!(ChatTitle::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            ChatTitle::parse(&"é".repeat(201)),
            Err(ChatTitleError::TooLong)
        );
    }

    #[test]
    fn title_with_newline_inside_is_refused() {
        assert_eq!(
            ChatTitle::parse("a\nb"),
            Err(ChatTitleError::ControlCharacter)
        );
    }

    #[test]
    fn default_title() {
        assert_eq!(ChatTitle::default().as_str(), "New chat");
    }

    #[test]
    fn temperature_bounds() {
        assert!(Temperature::new(0.0).is_ok());
        assert!(Temperature::new(2.0).is_ok());
        assert!(Temperature::new(-0.1).is_err());
        assert!(Temperature::new(2.01).is_err());
        assert!(Temperature::new(f64::NAN).is_err());
    }

    #[test]
    fn max_tokens_bounds() {
        assert!(MaxTokens::new(0).is_err());
        assert!(MaxTokens::new(1).is_ok());
        assert!(MaxTokens::new(MaxTokens::MAX + 1).is_err());
    }

    #[test]
    fn model_names() {
        assert!(ModelName::parse("gpt-4o-mini").is_ok());
        assert!(ModelName::parse("meta-llama/Llama-3.1-8B:q4").is_ok());
        assert!(ModelName::parse("").is_err());
        assert!(ModelName::parse("a b").is_err());
        assert!(ModelName::parse(&"m".repeat(101)).is_err());
    }

    #[test]
    fn system_prompt_length() {
        assert!(SystemPrompt::parse(&"x".repeat(20_000)).is_ok());
        assert!(SystemPrompt::parse(&"x".repeat(20_001)).is_err());
    }

    #[test]
    fn nul_is_refused_in_every_text_of_a_chat() {
        assert_eq!(
            SystemPrompt::parse("be\0brief"),
            Err(SettingsError::SystemPromptNul)
        );
        assert_eq!(
            ChatTitle::parse("a\0b"),
            Err(ChatTitleError::ControlCharacter)
        );
        assert_eq!(ModelName::parse("gpt\0"), Err(SettingsError::BadModel));
        let bad: Result<ChatSettings, _> = serde_json::from_str(r#"{"systemPrompt":"x\u0000y"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn settings_deserialize_checks_rules() {
        let bad: Result<ChatSettings, _> = serde_json::from_str(r#"{"temperature": 3}"#);
        assert!(bad.is_err());
        let ok: ChatSettings = serde_json::from_str(r#"{"model":"echo","maxTokens":10}"#).unwrap();
        assert_eq!(ok.max_tokens.map(|m| m.value()), Some(10));
    }

    proptest! {
        #[test]
        fn any_accepted_title_is_trimmed_and_bounded(s in "\\PC{0,260}") {
            if let Ok(t) = ChatTitle::parse(&s) {
                prop_assert_eq!(t.as_str(), t.as_str().trim());
                prop_assert!(!t.as_str().is_empty());
                prop_assert!(t.as_str().chars().count() <= ChatTitle::MAX_CHARS);
            }
        }
    }
}
