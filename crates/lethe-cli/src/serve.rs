//! `lethe serve` and `lethe token`: Lethe as an HTTP service, and the API
//! tokens that call it. Thin: the server is `lethe-server`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use lethe_store::{Engine, Role, StoreError};
use serde_json::json;

use crate::Cli;
use crate::commands::engine;
use crate::exit;
use crate::output::print_json;
use crate::table;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "LETHE_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (413 beyond it).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body: usize,
    /// Allow browser calls from this origin (CORS; repeatable). Without it
    /// CORS is off: only the console this process serves can call the API
    /// from a browser.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Do not run the outbox relay in this process (run `lethe relay`
    /// elsewhere).
    #[arg(long)]
    pub no_relay: bool,
    /// Do not run the policy's scheduled jobs in this process (run
    /// `lethe worker` elsewhere).
    #[arg(long)]
    pub no_jobs: bool,
    /// How long an authenticated token is remembered: a revoked token stops
    /// working within this time.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration, value_name = "DURATION")]
    pub token_cache: Duration,
}

/// `lethe serve`.
pub async fn serve(cli: &Cli, a: &ServeArgs) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    let places = crate::erasure::places(cli, &engine)?;
    let opts = lethe_server::ServeOptions {
        max_body: a.max_body,
        cors_origins: a.cors_origins.clone(),
        relay: !a.no_relay,
        jobs: !a.no_jobs,
        base_dir: crate::cold::policy_dir(cli),
        token_cache: a.token_cache,
        ..Default::default()
    };
    run(engine, places, opts, a.listen, None).await
}

/// Listens on `addr` and serves until Ctrl-C or SIGTERM. `banner` is
/// printed after the address (the demo's token).
pub async fn run(
    engine: Engine,
    places: lethe_erasure::Places,
    opts: lethe_server::ServeOptions,
    addr: SocketAddr,
    banner: Option<String>,
) -> Result<u8, StoreError> {
    if engine
        .tokens()
        .await?
        .iter()
        .all(|t| t.revoked_at.is_some())
    {
        eprintln!("note: no API token yet; create one with `lethe token create NAME --role admin`");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StoreError::Invalid(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    println!(
        "Lethe is serving on http://{local}/ (console), API at http://{local}/v1, OpenAPI at http://{local}/openapi.json"
    );
    if let Some(b) = banner {
        println!("{b}");
    }
    println!(
        "Stop with Ctrl-C: requests in flight finish, the relay and the jobs finish what they hold."
    );
    let shutdown = async {
        crate::delivery::shutdown_signal().await;
        eprintln!("stopping: finishing requests, deliveries and jobs in hand");
    };
    lethe_server::serve(engine, places, opts, listener, shutdown)
        .await
        .map_err(|e| StoreError::Database(format!("the server stopped: {e}")))?;
    Ok(exit::OK)
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once; only its SHA-256 is
    /// stored). The name is the actor the audit log records.
    Create {
        /// The application or person the token is for.
        name: String,
        /// viewer (read), operator (also delete, restore, replay) or admin
        /// (also purge, erasure, legal holds).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who creates it (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets), revoked ones included.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working within --token-cache of every
    /// `lethe serve` (5s by default). Its name stays taken.
    Revoke {
        name: String,
        /// Who revokes it (recorded in the audit log).
        #[arg(long, env = "LETHE_ACTOR")]
        actor: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

impl TokenCommand {
    pub fn json(&self) -> bool {
        match self {
            TokenCommand::Create { json, .. }
            | TokenCommand::List { json }
            | TokenCommand::Revoke { json, .. } => *json,
        }
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: StoreError| e.to_string())
}

/// `lethe token`.
pub async fn token(cli: &Cli, c: &TokenCommand) -> Result<u8, StoreError> {
    let engine = engine(cli).await?;
    match c {
        TokenCommand::Create {
            name,
            role,
            actor,
            json,
        } => {
            let secret = engine.token_create(name, *role, actor.as_deref()).await?;
            if *json {
                print_json(&json!({"name": name, "role": role, "token": secret}));
            } else {
                println!("{secret}");
                eprintln!(
                    "token \"{name}\" ({}) created; the secret above is shown only now: keep it in your secret store",
                    role.as_str()
                );
            }
        }
        TokenCommand::List { json } => {
            let list = engine.tokens().await?;
            if *json {
                print_json(&json!(list));
            } else if list.is_empty() {
                println!("no tokens (`lethe token create NAME --role viewer|operator|admin`)");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.as_str().into(),
                            t.created_at.clone(),
                            t.revoked_at.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["NAME", "ROLE", "CREATED", "REVOKED"], &rows)
                );
            }
        }
        TokenCommand::Revoke { name, actor, json } => {
            engine.token_revoke(name, actor.as_deref()).await?;
            if *json {
                print_json(&json!({"revoked": name}));
            } else {
                println!("token \"{name}\" revoked");
            }
        }
    }
    Ok(exit::OK)
}
