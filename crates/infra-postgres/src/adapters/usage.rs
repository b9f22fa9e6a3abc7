//! `UsageRepository` for `PgStore`: the ledger's rows, and the conversion of a charge
//! that `finish_reply` also uses inside its transaction.

use crate::errors::PgError;
use crate::repo;
use crate::repo::usage::{UsageCharge, UsageRecord};
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::model::{UsageEntry, UsagePurpose, UsageRow, UserId};
use domain::ports::{StoreError, UsageRepository};

/// A charge as the table takes it.
pub(crate) fn charge_row(e: &UsageEntry) -> UsageCharge {
    UsageCharge {
        user_id: e.user.as_str().to_owned(),
        day: e.day,
        model: e.model.clone(),
        purpose: e.purpose.as_str().to_owned(),
        estimated: e.estimated,
        prompt_tokens: i64::from(e.usage.prompt_tokens),
        completion_tokens: i64::from(e.usage.completion_tokens),
        requests: 1,
    }
}

pub(crate) fn into_domain(r: UsageRecord) -> Result<UsageRow, PgError> {
    let count = |n: i64| u64::try_from(n).map_err(|_| PgError::Data(format!("negative count {n}")));
    Ok(UsageRow {
        day: r.day,
        purpose: UsagePurpose::parse(&r.purpose)
            .ok_or_else(|| PgError::Data(format!("unknown usage purpose {:?}", r.purpose)))?,
        model: r.model,
        estimated: r.estimated,
        prompt_tokens: count(r.prompt_tokens)?,
        completion_tokens: count(r.completion_tokens)?,
        requests: count(r.requests)?,
    })
}

#[async_trait]
impl UsageRepository for PgStore {
    #[tracing::instrument(skip_all)]
    async fn record_usage(&self, entry: &UsageEntry) -> Result<(), StoreError> {
        let row = charge_row(entry);
        self.run(move |c| repo::usage::add(c, &row)).await
    }

    #[tracing::instrument(skip_all)]
    async fn daily_usage(
        &self,
        user: &UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            repo::usage::range(c, &user, from, to)?
                .into_iter()
                .map(into_domain)
                .collect()
        })
        .await
    }
}
