//! `modelforge`: chat with local models, with users, sessions and memory.
//!
//! The binary only parses arguments and wires the library crates together; see
//! `modelforge_examples` for the shared pieces.

mod chat;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use modelforge_core::{ModelHub, NewUser, SessionStore, User, UserRole};
use modelforge_examples::setup;

/// Chat with local language models.
#[derive(Parser)]
#[command(name = "modelforge", version, about)]
struct Cli {
    /// Where users, sessions and models live [default: ~/.local/share/modelforge].
    #[arg(long, global = true, env = "MODELFORGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
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
    Chat(chat::ChatArgs),
    /// List a user's sessions.
    Sessions {
        /// The user.
        #[arg(long)]
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List what a user's memories hold.
    Memories {
        /// The user.
        #[arg(long)]
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Models available locally (files under DATA_DIR/models).
    Models {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MODELFORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
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
    match cli.command {
        Command::User { command: UserCommand::Add { name, role, email } } => {
            let store = setup::open_store(&data_dir)?;
            let password = password(&format!("New password for {name}: "))?;
            let role: UserRole = role.parse().map_err(anyhow::Error::msg)?;
            let user = store.create_user(&NewUser { username: name, password, email, role })?;
            println!("created {} `{}` ({})", user.role, user.username, user.id);
            Ok(())
        }
        Command::Chat(args) => chat::run(&data_dir, args),
        Command::Sessions { user, json } => {
            let store = setup::open_store(&data_dir)?;
            let actor = login(store.as_ref(), &user)?.actor();
            output::sessions(&store.list_sessions(&actor)?, json)
        }
        Command::Memories { user, json } => {
            let store = setup::open_store(&data_dir)?;
            let actor = login(store.as_ref(), &user)?.actor();
            output::memories(&store.list_memories(&actor)?, json)
        }
        Command::Models { json } => output::models(&setup::catalog(&data_dir).cached()?, json),
    }
}

/// The password from `MODELFORGE_PASSWORD`, else asked for without echo.
fn password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("MODELFORGE_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password(prompt).context("cannot read the password (set MODELFORGE_PASSWORD)")
}

/// Logs `username` in with the password from the environment or a prompt.
fn login(store: &dyn SessionStore, username: &str) -> anyhow::Result<User> {
    let password = password(&format!("Password for {username}: "))?;
    Ok(store.login(username, &password)?)
}
