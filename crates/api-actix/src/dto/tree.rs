//! Bodies and shapes of conversation trees (DESIGN.md §2.1): a message's `branch`, a
//! send's `parentId`, a chat's `activeLeafId`, and a fork.

use super::rules;
use super::{ChatRequest, SettingsRequest};
use crate::error::ApiError;
use crate::extract::Fields;
use domain::services::SendParent;
use domain::{Branch, IdError, MessageContent, MessageId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A message's place among its siblings (the messages with the same parent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchDto {
    /// 1-based position among the siblings, in `seq` order.
    #[schema(minimum = 1)]
    pub index: u32,
    /// Number of siblings, this message included.
    #[schema(minimum = 1)]
    pub count: u32,
    /// The previous sibling; `null` for the first.
    #[schema(required = true, format = Uuid)]
    pub prev_id: Option<String>,
    /// The next sibling; `null` for the last.
    #[schema(required = true, format = Uuid)]
    pub next_id: Option<String>,
}

impl From<&Branch> for BranchDto {
    fn from(b: &Branch) -> Self {
        Self {
            index: b.index,
            count: b.count,
            prev_id: b.prev_id.map(|id| id.to_string()),
            next_id: b.next_id.map(|id| id.to_string()),
        }
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A message id given in a body or query: a well-formed UUID that is not a message id
/// (not v7) names no message, the 404 of "not found"; anything else is a 422.
pub(crate) fn message_ref(
    raw: &str,
    field: &str,
    f: &mut Fields,
) -> Option<Result<MessageId, ApiError>> {
    match MessageId::parse(raw) {
        Ok(id) => Some(Ok(id)),
        Err(IdError::NotV7) => Some(Err(ApiError::NotFound)),
        Err(e @ IdError::NotAUuid) => {
            f.push(field, format!("must be a message id: {e}"));
            None
        }
    }
}

/// Body of `POST /api/v1/messages`; no other field is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendRequest {
    /// Text.
    #[schema(schema_with = rules::content)]
    pub content: String,
    /// The assistant reply of the chat this message follows (edit-and-resend: the
    /// edited message's parent); `null`: a new root; absent: the chat's active leaf.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Uuid, nullable)]
    pub parent_id: Option<Option<String>>,
}

impl SendRequest {
    /// The content and the parent, checked.
    pub fn try_into_parts(self) -> Result<(MessageContent, SendParent), ApiError> {
        let mut f = Fields::default();
        let content = f.check("content", MessageContent::parse(&self.content));
        let parent = match &self.parent_id {
            None => Some(Ok(SendParent::ActiveLeaf)),
            Some(None) => Some(Ok(SendParent::Root)),
            Some(Some(raw)) => {
                message_ref(raw, "parentId", &mut f).map(|r| r.map(SendParent::Message))
            }
        };
        let (content, parent) = f.finish(|| Some((content?, parent?)))?;
        Ok((content, parent?))
    }
}

/// Body of `PUT /api/v1/chats/{id}`; no other field is accepted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatUpdateRequest {
    /// Title.
    #[schema(schema_with = rules::title)]
    pub title: Option<String>,
    /// Settings; replaces the whole settings object. Absent or `null`: unchanged.
    pub settings: Option<SettingsRequest>,
    /// Selects the branch the chat shows: the active leaf becomes the newest descendant
    /// of this message of the chat (at each step the child with the highest `seq`).
    /// Absent or `null`: unchanged.
    #[schema(format = Uuid)]
    pub active_leaf_id: Option<String>,
}

impl ChatUpdateRequest {
    /// The title and settings change (if any), and the message whose branch to select.
    pub fn split(self) -> Result<(Option<ChatRequest>, Option<MessageId>), ApiError> {
        let mut f = Fields::default();
        let leaf = self
            .active_leaf_id
            .as_deref()
            .map(|raw| message_ref(raw, "activeLeafId", &mut f));
        let change = (self.title.is_some() || self.settings.is_some()).then_some(ChatRequest {
            title: self.title,
            settings: self.settings,
        });
        f.finish(|| Some(()))?;
        Ok((change, leaf.flatten().transpose()?))
    }
}

/// Body of `POST /api/v1/chats/{id}/fork`; no other field is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkRequest {
    /// The last message to copy: the new chat holds the branch from the root to it.
    #[schema(format = Uuid)]
    pub message_id: String,
}

impl ForkRequest {
    /// The message, checked.
    pub fn try_into_message(self) -> Result<MessageId, ApiError> {
        let mut f = Fields::default();
        let id = message_ref(&self.message_id, "messageId", &mut f);
        f.finish(|| id)?
    }
}
