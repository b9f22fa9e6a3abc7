//! `chat-service`: serve the API (default), mint a token, run migrations, erase a user,
//! operate the outbox, or print the OpenAPI document.

use api_actix::config::Settings;
use api_actix::startup::Application;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "chat-service", version, about = "LLM chat sessions over HTTP")]
struct Cli {
    /// YAML configuration file; environment variables override it.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the database migrations, then exit (needs DATABASE_URL or DB_HOST).
    Migrate,
    /// Print the OpenAPI 3.1 document of the HTTP API, then exit (needs no configuration).
    Openapi,
    /// Erase everything a user stored (as `DELETE /api/v1/me` does), then exit (needs DATABASE_URL or DB_HOST).
    EraseUser {
        /// The user (token subject).
        #[arg(long)]
        sub: String,
    },
    /// Operate the events outbox (needs DATABASE_URL or DB_HOST).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Print a token for a user, signed with the configured JWT_SECRET.
    Token {
        /// The user (token subject).
        #[arg(long)]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxCommand {
    /// Print the entries set aside (dead), one JSON object per line, oldest first.
    ListDead {
        /// Most entries to print.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Make dead entries pending again (all, or one event's): the relay retries them
    /// within its poll interval, in their original order.
    RetryDead {
        /// Only the entry of this event id.
        #[arg(long)]
        event: Option<String>,
    },
}

async fn outbox(settings: &Settings, command: OutboxCommand) -> anyhow::Result<()> {
    use api_actix::outbox_cmd;
    match command {
        OutboxCommand::ListDead { limit } => {
            let n = outbox_cmd::list_dead(settings, limit, &mut std::io::stdout().lock()).await?;
            eprintln!(
                "outbox: {n} dead entr{} listed",
                if n == 1 { "y" } else { "ies" }
            );
        }
        OutboxCommand::RetryDead { event } => {
            let n = outbox_cmd::retry_dead(settings, event.as_deref()).await?;
            eprintln!(
                "outbox: {n} dead entr{} made pending again",
                if n == 1 { "y" } else { "ies" }
            );
        }
    }
    Ok(())
}

fn load(cli: &Cli) -> Result<Settings, String> {
    let yaml = match &cli.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    Settings::load(yaml.as_deref(), &env).map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    api_actix::telemetry::init(&settings.log, std::io::stdout);
    let wired = api_actix::wiring::wire(&settings).await?;
    let (notes, background) = (wired.notes, wired.background);
    let app = Application::build(&settings, wired.adapters)?;
    for n in &notes {
        tracing::info!("{n}");
    }
    if settings.is_embedded() {
        tracing::warn!("running on the embedded defaults: in-memory storage (throw-away), echo model, events to the log, generated JWT secret");
    }
    let addr = format!(
        "http://{}:{}",
        settings
            .http
            .addr
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h),
        app.port()
    );
    tracing::info!(%addr, "chat-service listening");
    if let Some(token) = &app.dev_token {
        println!("\nDev token for user \"dev\" (valid 24 h; a new secret is generated at every start):\n\n  export TOKEN={token}\n");
        println!("Try it:\n\n  curl -s -X POST {addr}/api/v1/chats -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"title\":\"Hello\"}}'\n");
    }
    let served = app.run_until(shutdown_signal()).await;
    background.shutdown().await;
    tracing::info!("stopped");
    served
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = settings
        .database
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no database configured: set DATABASE_URL or DB_HOST"))?;
    let mut cfg = api_actix::wiring::pg_config(db);
    cfg.text_search_config = settings.data.text_search_config.clone();
    let store = infra_postgres::PgStore::new(&cfg)?;
    let applied = store.run_migrations().await?;
    if applied.is_empty() {
        eprintln!("migrations: the database is up to date");
    } else {
        eprintln!("migrations applied: {}", applied.join(", "));
    }
    if store.apply_text_search_config().await? {
        eprintln!(
            "message search: index rebuilt for text-search configuration {}",
            cfg.text_search_config
        );
    }
    Ok(())
}

async fn erase_user(settings: &Settings, sub: &str) -> anyhow::Result<()> {
    let user = domain::UserId::parse(sub).map_err(|e| anyhow::anyhow!("--sub: {e}"))?;
    let db = settings
        .database
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no database configured: set DATABASE_URL or DB_HOST"))?;
    let store = infra_postgres::PgStore::new(&api_actix::wiring::pg_config(db))?;
    store.run_migrations().await?;
    let service = domain::services::ErasureService::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(domain::ports::SystemClock),
    );
    let report = service.erase_now(&user).await?;
    eprintln!(
        "erased user {user}: {} chats, {} messages; user.erased stored",
        report.chats, report.messages
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", api_actix::openapi::json());
        return ExitCode::SUCCESS;
    }
    let settings = match load(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat-service: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Openapi => Ok(()),
        Command::EraseUser { sub } => erase_user(&settings, &sub).await,
        Command::Outbox { command } => outbox(&settings, command).await,
        Command::Token { sub, ttl } => match &settings.auth.jwt_secret {
            None => Err(anyhow::anyhow!("JWT_SECRET is not set: tokens are signed with it (without it, `serve` prints a dev token)")),
            Some(secret) => api_actix::auth::mint(secret, &sub, ttl, settings.auth.issuer.clone(), settings.auth.audience.clone())
                .map(|t| println!("{t}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}
