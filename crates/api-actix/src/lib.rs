//! The chat service's HTTP API (actix-web): configuration, wiring, routes, DTOs and
//! authentication. The binary `chat-service` is a thin CLI over [`startup::Application`].

pub mod auth;
pub mod config;
pub mod cors;
pub mod dto;
pub mod dto_data;
pub mod error;
pub mod extract;
pub mod live_sweep;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod outbox_cmd;
pub mod playground;
pub mod probes;
pub mod problems;
pub mod rate_limit;
pub mod redis_live;
pub mod request_id;
pub mod routes;
pub mod shutdown;
pub mod slow_client;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wiring;
