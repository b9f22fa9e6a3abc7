//! Maps librdkafka failures to the publisher port's error: retriable (wait and
//! try again) or final (will not succeed as is; an operator must act).

use domain::ports::PublishError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Whether an error code means "this will never succeed as is".
///
/// Final: the message is too large or malformed, the topic name is invalid,
/// authentication or authorization is refused, the broker does not support
/// what is asked. Everything else (transport, timeouts, a full local queue,
/// leader elections, unknown topic while it is being created…) is retriable:
/// the relay never drops an event, so when in doubt we wait.
pub fn is_final(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidMessage
            | C::InvalidRecord
            | C::BadMessage
            | C::InvalidTimestamp
            | C::InvalidTopic
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
            | C::PolicyViolation
            | C::InvalidArgument
            | C::InvalidConfig
            | C::KeySerialization
            | C::ValueSerialization
    )
}

/// The error code inside a client error, when it has one.
pub fn error_code(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    err.rdkafka_error_code()
}

/// Classifies a client error.
pub fn classify(err: KafkaError) -> PublishError {
    let final_ = error_code(&err).is_some_and(is_final);
    let err = anyhow::Error::new(err).context("producing to Kafka");
    if final_ {
        PublishError::Final(err)
    } else {
        PublishError::Retriable(err)
    }
}

/// The more severe of two failures: final wins over retriable.
pub fn worse(a: PublishError, b: PublishError) -> PublishError {
    match (&a, &b) {
        (PublishError::Retriable(_), PublishError::Final(_)) => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_final_err(e: &PublishError) -> bool {
        matches!(e, PublishError::Final(_))
    }

    #[test]
    fn transport_and_timeouts_are_retriable() {
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
        ] {
            let e = classify(KafkaError::MessageProduction(code));
            assert!(!is_final_err(&e), "{code:?} should be retriable");
        }
        assert!(!is_final_err(&classify(KafkaError::Canceled)));
    }

    #[test]
    fn size_authorization_and_bad_topic_are_final() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            let e = classify(KafkaError::MessageProduction(code));
            assert!(is_final_err(&e), "{code:?} should be final");
        }
    }

    #[test]
    fn final_is_worse_than_retriable() {
        let r = || PublishError::Retriable(anyhow::anyhow!("r"));
        let f = || PublishError::Final(anyhow::anyhow!("f"));
        assert!(is_final_err(&worse(r(), f())));
        assert!(is_final_err(&worse(f(), r())));
        assert!(!is_final_err(&worse(r(), r())));
    }
}
