//! Integration tests of the Kafka adapter against librdkafka's in-process mock
//! cluster (the real Kafka protocol), and of the AsyncAPI document.
//!
//! Modules are marked `cfg(test)` so clippy treats their helpers as test code.

#[cfg(test)]
mod asyncapi;
#[cfg(test)]
mod outbox_contract;
#[cfg(test)]
mod publisher;
#[cfg(test)]
mod publisher_failures;
#[cfg(test)]
mod relay;
#[cfg(test)]
mod relay_dead;
#[cfg(test)]
mod support;
#[cfg(test)]
#[cfg(feature = "tansu-tests")]
mod tansu;
