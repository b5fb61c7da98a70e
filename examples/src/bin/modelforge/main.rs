//! `modelforge`: chat with local models, with users, sessions and memory.
//!
//! The binary only parses arguments and wires the library crates together; see
//! `modelforge_examples` for the shared pieces.

mod bench;
mod chat;
mod memories;
mod models;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use modelforge_core::{NewUser, SessionStore, StoreError, User, UserRole};
use modelforge_examples::setup;

/// Chat with local language models.
#[derive(Parser)]
#[command(name = "modelforge", version, about)]
struct Cli {
    /// Where users, sessions and models live [default: ~/.local/share/modelforge].
    #[arg(long, global = true, env = "MODELFORGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use this PostgreSQL database (shared with `modelforge-server` replicas) instead of
    /// SQLite in DATA_DIR; needs MODELFORGE_JWT_SECRET or MODELFORGE_JWT_SECRET_FILE.
    #[arg(long, global = true, env = "MODELFORGE_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Chat with a model: one turn with --message, else an interactive session.
    Chat(Box<chat::ChatArgs>),
    /// Measure prompt processing and generation speed, like llama-bench.
    Bench(bench::BenchArgs),
    /// List a user's sessions.
    Sessions {
        /// The user.
        #[arg(long)]
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A user's memories: list (the default), add, edit, rm, search, export, off, on.
    Memories(memories::MemoriesArgs),
    /// Models: list what is local, search the Hub, list a repository's files, remove.
    /// Without a subcommand, `list`.
    Models {
        /// Print JSON (for `list` without the subcommand's name).
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<models::ModelsCommand>,
    },
    /// Fetch a model from the Hugging Face Hub into its cache (HF_ENDPOINT, HF_TOKEN,
    /// HF_HUB_CACHE, HF_HUB_OFFLINE apply).
    Pull(models::PullArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Register a user. The password comes from MODELFORGE_PASSWORD, else a prompt.
    Add {
        /// Login name.
        name: String,
        /// Role; the first user is always an admin.
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// An existing admin who grants the admin role (their password comes from
        /// MODELFORGE_ADMIN_PASSWORD, else a prompt). Not needed for the first user.
        #[arg(long)]
        admin: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Bench(args) = &cli.command {
        // candle reads its thread count from the environment once, before this process has
        // a second thread.
        bench::set_candle_threads(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MODELFORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
                // ureq logs raw requests, token included, at TRACE: keep it to warnings.
                .add_directive("ureq=warn".parse().expect("a valid directive"))
                .add_directive("ureq_proto=warn".parse().expect("a valid directive")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line: the error and its causes, no backtrace.
            eprintln!("error: {}", err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = setup::data_dir(cli.data_dir)?;
    let db = cli.database_url.as_deref();
    let open_store = || setup::open_store_at(&data_dir, db);
    match cli.command {
        Command::User { command: UserCommand::Add { name, role, email, admin } } => {
            let store = open_store()?;
            let role: UserRole = role.parse().map_err(anyhow::Error::msg)?;
            // Log the granting admin in first, so a wrong password creates nobody.
            let granter = match (&admin, role) {
                (Some(admin), UserRole::Admin) => Some(admin_login(store.as_ref(), admin)?.actor()),
                _ => None,
            };
            let password = password(&format!("New password for {name}: "))?;
            let requested = if granter.is_some() { UserRole::User } else { role };
            let user = store
                .create_user(&NewUser { username: name, password, email, role: requested })
                .map_err(|err| match err {
                    StoreError::PermissionDenied { .. } => {
                        anyhow::anyhow!(
                            "{err}: pass --admin NAME to grant the admin role as an existing admin"
                        )
                    }
                    other => other.into(),
                })?;
            let user = match granter {
                Some(actor) => store.set_user_role(&actor, user.id, UserRole::Admin)?,
                None => user,
            };
            println!("created {} `{}` ({})", user.role, user.username, user.id);
            Ok(())
        }
        Command::Chat(args) => chat::run(&data_dir, open_store()?, *args),
        Command::Bench(args) => bench::run(args),
        Command::Sessions { user, json } => {
            let store = open_store()?;
            let actor = login(store.as_ref(), &user)?.actor();
            let all = modelforge_core::SessionQuery {
                page: modelforge_core::Page::first(modelforge_core::Page::MAX_LIMIT),
                ..Default::default()
            };
            output::sessions(&store.list_sessions(&actor, &all)?.sessions, json)
        }
        Command::Memories(args) => memories::run(&data_dir, open_store()?, args),
        Command::Models { json, command } => models::run(&data_dir, command, json),
        Command::Pull(args) => models::pull(args),
    }
}

/// The password from `MODELFORGE_PASSWORD`, else asked for without echo.
fn password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("MODELFORGE_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password(prompt).context("cannot read the password (set MODELFORGE_PASSWORD)")
}

/// Logs an admin in with MODELFORGE_ADMIN_PASSWORD, else a prompt.
fn admin_login(store: &dyn SessionStore, username: &str) -> anyhow::Result<User> {
    let password = match std::env::var("MODELFORGE_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) => rpassword::prompt_password(format!("Password for admin {username}: "))
            .context("cannot read the admin password (set MODELFORGE_ADMIN_PASSWORD)")?,
    };
    Ok(store.login(username, &password)?)
}

/// Logs `username` in with the password from the environment or a prompt.
fn login(store: &dyn SessionStore, username: &str) -> anyhow::Result<User> {
    let password = password(&format!("Password for {username}: "))?;
    Ok(store.login(username, &password)?)
}
