//! The acknowledged-writes file: one CSV line per write the service confirmed, so a
//! script can check afterwards (with psql) that each one is in the database.
//!
//! Lines are `kind,id,chat_id,status`: `chat,<id>,,` for a created chat,
//! `user,<id>,<chat>,` for a stored user message, `reply,<id>,<chat>,<status>` for a
//! reply whose final state the service reported (`complete` or `failed`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

/// Appends acknowledged writes to a file (or nowhere).
#[derive(Debug, Default)]
pub struct Acks {
    out: Option<Mutex<BufWriter<File>>>,
}

impl Acks {
    /// Writes to `path` (created or truncated), or discards when `None`.
    pub fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let out = match path {
            Some(p) => Some(Mutex::new(BufWriter::new(File::create(p)?))),
            None => None,
        };
        Ok(Self { out })
    }

    fn line(&self, kind: &str, id: &str, chat: &str, status: &str) {
        if let Some(out) = &self.out {
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{kind},{id},{chat},{status}");
        }
    }

    /// A chat the service created.
    pub fn chat(&self, id: &str) {
        self.line("chat", id, "", "");
    }

    /// A user message the service stored.
    pub fn user(&self, id: &str, chat: &str) {
        self.line("user", id, chat, "");
    }

    /// A reply the service reported finished with `status`.
    pub fn reply(&self, id: &str, chat: &str, status: &str) {
        self.line("reply", id, chat, status);
    }

    /// The `message` and `reply` objects of a turn (a 201 body, or a 502/504 problem
    /// with the stored parts).
    pub fn turn(&self, body: &serde_json::Value) {
        if let Some((id, chat)) = ids(&body["message"]) {
            self.user(id, chat);
        }
        if let Some((id, chat)) = ids(&body["reply"]) {
            let status = body["reply"]["status"].as_str().unwrap_or("");
            self.reply(id, chat, status);
        }
    }

    /// Flushes the file.
    pub fn flush(&self) -> std::io::Result<()> {
        match &self.out {
            Some(out) => out.lock().unwrap_or_else(|e| e.into_inner()).flush(),
            None => Ok(()),
        }
    }
}

/// `(id, chatId)` of a message object.
pub fn ids(m: &serde_json::Value) -> Option<(&str, &str)> {
    Some((m["id"].as_str()?, m["chatId"].as_str()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_become_lines() {
        let dir = std::env::temp_dir().join(format!("loadgen-acks-{}", std::process::id()));
        let acks = Acks::open(Some(&dir)).unwrap();
        acks.chat("c1");
        acks.turn(&serde_json::json!({
            "message": {"id": "m1", "chatId": "c1"},
            "reply": {"id": "r1", "chatId": "c1", "status": "failed"}
        }));
        acks.flush().unwrap();
        let text = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(text, "chat,c1,,\nuser,m1,c1,\nreply,r1,c1,failed\n");
    }
}
