//! Maps librdkafka failures to the publisher port's error: retriable (wait and try
//! again), refused (the cluster refuses the service: an operator must fix the settings)
//! or final (this event will not succeed as is).

use domain::ports::PublishError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What a failure means for the event and for the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Transient (transport, timeouts, a full local queue, leader elections, an unknown
    /// topic while it is being created…): try again later.
    Retriable,
    /// The cluster refuses this service (authentication, authorization, a feature or
    /// compression it does not support, a bad topic name or setting): nothing gets
    /// through until an operator fixes the settings; not the event's fault.
    Refused,
    /// This event will never be accepted as it is (too large, malformed record or
    /// timestamp, refused by a broker policy, not serializable).
    Final,
}

/// Classifies an error code. When in doubt: retriable (the relay never drops an
/// event, so it waits).
pub fn class_of(code: RDKafkaErrorCode) -> Class {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::MessageBatchTooLarge
        | C::InvalidMessage
        | C::InvalidRecord
        | C::BadMessage
        | C::InvalidTimestamp
        | C::PolicyViolation
        | C::KeySerialization
        | C::ValueSerialization => Class::Final,
        C::InvalidTopic
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::UnsupportedForMessageFormat
        | C::UnsupportedCompressionType
        | C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::InvalidRequiredAcks
        | C::InvalidArgument
        | C::InvalidConfig => Class::Refused,
        _ => Class::Retriable,
    }
}

/// Whether an error code means "this event will never succeed as is".
pub fn is_final(code: RDKafkaErrorCode) -> bool {
    class_of(code) == Class::Final
}

/// The error code inside a client error, when it has one.
pub fn error_code(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    err.rdkafka_error_code()
}

/// Classifies a client error.
pub fn classify(err: KafkaError) -> PublishError {
    let class = error_code(&err).map_or(Class::Retriable, class_of);
    let err = anyhow::Error::new(err).context("producing to Kafka");
    match class {
        Class::Retriable => PublishError::Retriable(err),
        Class::Refused => PublishError::Refused(err),
        Class::Final => PublishError::Final(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &PublishError) -> Class {
        match e {
            PublishError::Retriable(_) => Class::Retriable,
            PublishError::Refused(_) => Class::Refused,
            PublishError::Final(_) => Class::Final,
        }
    }

    fn of(code: RDKafkaErrorCode) -> Class {
        kind(&classify(KafkaError::MessageProduction(code)))
    }

    #[test]
    fn transport_timeouts_and_lost_producer_state_are_retriable() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::BrokerNotAvailable,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::NetworkException,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::Resolve,
            RDKafkaErrorCode::UnknownProducerId,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
            RDKafkaErrorCode::PurgeQueue,
            RDKafkaErrorCode::PurgeInflight,
        ] {
            assert_eq!(of(code), Class::Retriable, "{code:?}");
        }
        assert_eq!(kind(&classify(KafkaError::Canceled)), Class::Retriable);
    }

    #[test]
    fn the_events_own_faults_are_final() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::InvalidTimestamp,
            RDKafkaErrorCode::PolicyViolation,
        ] {
            assert_eq!(of(code), Class::Final, "{code:?}");
            assert!(is_final(code));
        }
    }

    #[test]
    fn authorization_and_bad_settings_are_refused_not_the_events_fault() {
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::UnsupportedCompressionType,
        ] {
            assert_eq!(of(code), Class::Refused, "{code:?}");
            assert!(!is_final(code));
        }
    }
}
