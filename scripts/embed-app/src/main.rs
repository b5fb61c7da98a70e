//! Holds a `Conversation` in an `Arc`, runs turns on one session from several threads and on
//! others at the same time, and checks the memory behaviour the CLI has: a fact learned in one
//! session reaches an unrelated question in the next. Exits non-zero when anything is off.

use std::ops::ControlFlow;
use std::sync::Arc;

use modelforge_core::{ChatStore, GenerationParams, NewUser, Role, UserRole, UserStore};
use modelforge_memory::{Conversation, MemoryBank};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::memory_store::InMemoryStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(InMemoryStore::new());
    let new = NewUser { username: "lina".into(), password: "a long password".into(), email: None, role: UserRole::User };
    let lina = store.create_user(&new)?.actor();
    let bank = Arc::new(MemoryBank::new(store.clone(), None));
    let chat = Arc::new(Conversation::new(Arc::new(EchoModel::new()), store.clone(), store.clone(), bank));
    let params = GenerationParams::greedy();

    let shared = store.create_session(&lina, "")?.id;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (chat, params) = (Arc::clone(&chat), params.clone());
            std::thread::spawn(move || {
                let text = format!("message {i}");
                chat.turn(&lina, shared, &text, &params, &mut |_| ControlFlow::Continue(())).map(|_| ())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a turn panicked")??;
    }
    let messages = store.list_messages(&lina, shared)?;
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    let alternating = roles.chunks(2).all(|pair| pair == [Role::User, Role::Assistant]);
    if messages.len() != 8 || !alternating {
        return Err(format!("turns interleaved: {roles:?}").into());
    }

    let first = store.create_session(&lina, "")?.id;
    let outcome = chat.turn(&lina, first, "I'm allergic to peanuts.", &params, &mut |_| ControlFlow::Continue(()))?;
    chat.learn(&lina, &outcome)?;
    let later = store.create_session(&lina, "")?.id;
    let outcome = chat.turn(&lina, later, "What should I cook tonight?", &params, &mut |_| ControlFlow::Continue(()))?;
    if !outcome.memories.iter().any(|m| m.content.contains("peanut")) {
        return Err(format!("the allergy did not reach the next session: {:?}", outcome.memories).into());
    }
    println!("embed-app: 4 threads on one session kept their order; the allergy reached a new session");
    Ok(())
}
