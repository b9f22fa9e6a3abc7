//! The in-memory usage ledger: per user, sums by (day, model, purpose, estimated).

use crate::store::MemoryStore;
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::ports::{StoreError, UsageRepository};
use domain::{UsageEntry, UsagePurpose, UsageRow, UserId};
use std::collections::{BTreeMap, HashMap};

type Key = (NaiveDate, String, UsagePurpose, bool);

/// Prompt tokens, completion tokens, entries.
type Sums = (u64, u64, u64);

/// Every user's ledger rows.
#[derive(Default)]
pub(crate) struct Ledger(HashMap<UserId, BTreeMap<Key, Sums>>);

impl Ledger {
    /// Adds an entry to its row.
    pub(crate) fn add(&mut self, e: &UsageEntry) {
        let key = (e.day, e.model.clone(), e.purpose, e.estimated);
        let sums = self
            .0
            .entry(e.user.clone())
            .or_default()
            .entry(key)
            .or_default();
        sums.0 = sums.0.saturating_add(u64::from(e.usage.prompt_tokens));
        sums.1 = sums.1.saturating_add(u64::from(e.usage.completion_tokens));
        sums.2 = sums.2.saturating_add(1);
    }

    /// Forgets a user's rows.
    pub(crate) fn remove_user(&mut self, user: &UserId) {
        self.0.remove(user);
    }

    pub(crate) fn rows(&self, user: &UserId, from: NaiveDate, to: NaiveDate) -> Vec<UsageRow> {
        let Some(rows) = self.0.get(user) else {
            return Vec::new();
        };
        rows.iter()
            .filter(|((day, ..), _)| *day >= from && *day <= to)
            .map(|((day, model, purpose, estimated), s)| UsageRow {
                day: *day,
                model: model.clone(),
                purpose: *purpose,
                estimated: *estimated,
                prompt_tokens: s.0,
                completion_tokens: s.1,
                requests: s.2,
            })
            .collect()
    }
}

#[async_trait]
impl UsageRepository for MemoryStore {
    async fn record_usage(&self, entry: &UsageEntry) -> Result<(), StoreError> {
        self.lock().usage.add(entry);
        Ok(())
    }

    async fn daily_usage(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError> {
        Ok(self.lock().usage.rows(user, from, to))
    }
}
