//! Token quotas per user (`quota.tokens_per_day`, `quota.tokens_per_month`): off unless set.

use super::Reader;
use domain::services::QuotaConfig;

/// Largest quota accepted (a trillion tokens: larger is a typo, not a budget).
const MAX_QUOTA: u64 = 1_000_000_000_000;

/// Reads the quota keys; 0 or unset means no limit for that period.
pub(super) fn read(r: &mut Reader) -> QuotaConfig {
    let mut limit = |key: &str| -> Option<u64> {
        let n: u64 = r.ranged(key, 0, 0, MAX_QUOTA);
        (n > 0).then_some(n)
    };
    QuotaConfig {
        tokens_per_day: limit("quota.tokens_per_day"),
        tokens_per_month: limit("quota.tokens_per_month"),
    }
}
