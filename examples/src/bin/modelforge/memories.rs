//! `modelforge memories`: list, add, edit, remove, search and export a user's memories, and
//! switch memory off or on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use modelforge_core::{MemoryId, MemoryKind, SessionStore};
use modelforge_examples::setup;
use modelforge_memory::{MemoryBank, SearchOptions};

/// Arguments of `modelforge memories`.
#[derive(Args)]
pub struct MemoriesArgs {
    /// The user (password from MODELFORGE_PASSWORD, else a prompt).
    #[arg(long, global = true)]
    user: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    /// The sentence embedder for search (see `chat --embedder`).
    #[arg(long, global = true)]
    embedder: Option<String>,
    #[command(subcommand)]
    command: Option<MemoriesCommand>,
}

/// What to do with the memories; without a subcommand, list them.
#[derive(Subcommand)]
pub enum MemoriesCommand {
    /// List every memory.
    List,
    /// Remember something.
    Add {
        /// The statement, e.g. "The user is vegetarian."
        text: String,
        /// profile, preference or fact.
        #[arg(long, default_value = "fact")]
        kind: String,
    },
    /// Change a memory's text.
    Edit {
        /// The memory.
        id: MemoryId,
        /// The new statement.
        text: String,
    },
    /// Forget a memory.
    Rm {
        /// The memory.
        id: MemoryId,
    },
    /// The memories most relevant to TEXT, best first, with their scores.
    Search {
        /// What to look for.
        text: String,
        /// The most results.
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// Write every memory as JSON to a file, or to stdout.
    Export {
        /// The file [default: stdout].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Switch memory off for this user: chats neither use nor learn memories.
    Off,
    /// Switch memory back on.
    On,
}

/// Runs `modelforge memories`.
pub fn run(data_dir: &Path, store: Arc<dyn SessionStore>, args: MemoriesArgs) -> anyhow::Result<()> {
    let user = args.user.as_deref().ok_or_else(|| anyhow::anyhow!("--user NAME is required"))?;
    let actor = crate::login(store.as_ref(), user)?.actor();
    let command = args.command.unwrap_or(MemoriesCommand::List);
    // Only search needs vectors; the other commands keep the embedder (and its load) out.
    let embedder = match command {
        MemoriesCommand::Search { .. } | MemoriesCommand::Add { .. } | MemoriesCommand::Edit { .. } => {
            setup::open_embedder(data_dir, args.embedder.as_deref())?
        }
        _ => None,
    };
    let bank = MemoryBank::new(store.clone(), embedder);
    match command {
        MemoriesCommand::List => {
            let memories: Vec<_> = bank.list(&actor)?.into_iter().map(|r| r.memory).collect();
            crate::output::memories(&memories, args.json)
        }
        MemoriesCommand::Add { text, kind } => {
            let kind: MemoryKind = kind.parse().map_err(anyhow::Error::msg)?;
            let memory = bank.add(&actor, kind, &text)?;
            print_one(&memory, args.json, "added")
        }
        MemoriesCommand::Edit { id, text } => print_one(&bank.edit(&actor, id, &text)?, args.json, "changed"),
        MemoriesCommand::Rm { id } => {
            bank.delete(&actor, id)?;
            if args.json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("forgot {id}");
            }
            Ok(())
        }
        MemoriesCommand::Search { text, limit } => {
            let options = SearchOptions { top_k: limit, ..SearchOptions::default() };
            let hits = bank.search(&actor, &text, &options)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else if hits.is_empty() {
                println!("no memory matches");
            } else {
                for hit in hits {
                    println!("{}  {:.2}  {}", hit.memory.id, hit.score, hit.memory.content);
                }
            }
            Ok(())
        }
        MemoriesCommand::Export { output } => {
            let json = bank.export_json(&actor)?;
            match output {
                Some(path) => std::fs::write(&path, json)
                    .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            Ok(())
        }
        MemoriesCommand::Off | MemoriesCommand::On => {
            let on = matches!(command, MemoriesCommand::On);
            let user = store.set_memory_enabled(&actor, actor.user_id, on)?;
            if args.json {
                println!("{}", serde_json::json!({ "memory_enabled": user.memory_enabled }));
            } else {
                println!(
                    "memory is {} for {}",
                    if user.memory_enabled { "on" } else { "off" },
                    user.username
                );
            }
            Ok(())
        }
    }
}

fn print_one(memory: &modelforge_core::Memory, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(memory)?);
    } else {
        println!("{what} {}  {:<10} {}", memory.id, memory.kind.as_str(), memory.content);
    }
    Ok(())
}
