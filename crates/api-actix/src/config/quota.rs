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

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, crate::config::ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(None, &env)
    }

    #[test]
    fn quotas_are_off_unless_set() {
        let s = load(&[]).unwrap();
        assert!(!s.quota.is_on());
        let s = load(&[("QUOTA_TOKENS_PER_DAY", "0")]).unwrap();
        assert!(!s.quota.is_on());
    }

    #[test]
    fn quotas_are_read_from_the_environment_and_the_file() {
        let s = load(&[
            ("QUOTA_TOKENS_PER_DAY", "5000"),
            ("QUOTA_TOKENS_PER_MONTH", "100000"),
        ])
        .unwrap();
        assert_eq!(s.quota.tokens_per_day, Some(5_000));
        assert_eq!(s.quota.tokens_per_month, Some(100_000));
        let s = Settings::load(Some("quota:\n  tokens_per_month: 7\n"), &HashMap::new()).unwrap();
        assert_eq!(
            (s.quota.tokens_per_day, s.quota.tokens_per_month),
            (None, Some(7))
        );
    }

    #[test]
    fn bad_quotas_name_their_keys() {
        let err = load(&[
            ("QUOTA_TOKENS_PER_DAY", "lots"),
            ("QUOTA_TOKENS_PER_MONTH", "-1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("QUOTA_TOKENS_PER_DAY") && err.contains("QUOTA_TOKENS_PER_MONTH"),
            "{err}"
        );
    }
}
