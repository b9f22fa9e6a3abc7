//! The chat service's HTTP API (actix-web): configuration, wiring, routes, DTOs and
//! authentication. The binary `chat-service` is a thin CLI over [`startup::Application`].

pub mod auth;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod probes;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wiring;
