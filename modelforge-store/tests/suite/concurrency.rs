//! Many threads on one store: nothing lost, order kept, no "database is locked".

use std::time::Instant;

use modelforge_core::{Actor, ChatMessage, SessionId, SessionStore, UserRole};

use crate::common::{Factory, new_user};

const THREADS: usize = 16;
const PER_THREAD: usize = 500;
const USERS: usize = 4;

/// The `thread-index` contents of `thread`'s messages in `listed`.
fn sent_by(listed: &[modelforge_core::Message], thread: usize) -> Vec<usize> {
    let prefix = format!("t{thread}-");
    listed.iter().filter_map(|m| m.content.strip_prefix(&prefix)).map(|i| i.parse().unwrap()).collect()
}

/// 16 threads of 4 users append 500 messages each, alternating between a session of their
/// own and a session shared with the other threads of the same user.
pub fn sixteen_threads_append_500_messages_each(new_store: Factory) {
    let t = new_store();
    let actors: Vec<Actor> = (0..USERS).map(|u| t.register(&format!("user{u}")).1).collect();
    let shared: Vec<SessionId> =
        actors.iter().map(|a| t.store.create_session(a, "shared").unwrap().id).collect();
    let own: Vec<SessionId> = (0..THREADS)
        .map(|i| t.store.create_session(&actors[i % USERS], &format!("own {i}")).unwrap().id)
        .collect();
    let store: &dyn SessionStore = t.store.as_ref();

    let start = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (actor, own, shared) = (actors[thread % USERS], own[thread], shared[thread % USERS]);
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let session = if i % 2 == 0 { own } else { shared };
                    let message = ChatMessage::user(format!("t{thread}-{i}"));
                    // Any error, "database is locked" included, fails the test here.
                    store.append_message(&actor, session, &message, Some(i as u32)).unwrap();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    eprintln!("{} appends from {THREADS} threads in {elapsed:?}", THREADS * PER_THREAD);

    assert_eq!(t.count_rows("messages"), (THREADS * PER_THREAD) as i64, "nothing lost");
    for thread in 0..THREADS {
        let actor = actors[thread % USERS];
        let listed = store.list_messages(&actor, own[thread]).unwrap();
        assert_eq!(sent_by(&listed, thread), (0..PER_THREAD).step_by(2).collect::<Vec<_>>());
        assert_eq!(store.get_session(&actor, own[thread]).unwrap().message_count, (PER_THREAD / 2) as u64);
    }
    for (user, actor) in actors.iter().enumerate() {
        let listed = store.list_messages(actor, shared[user]).unwrap();
        assert_eq!(listed.len(), THREADS / USERS * PER_THREAD / 2);
        assert!(listed.windows(2).all(|w| w[0].created_at < w[1].created_at), "time order is list order");
        for thread in (user..THREADS).step_by(USERS) {
            assert_eq!(
                sent_by(&listed, thread),
                (1..PER_THREAD).step_by(2).collect::<Vec<_>>(),
                "thread {thread}"
            );
        }
        let session = store.get_session(actor, shared[user]).unwrap();
        assert_eq!(session.message_count, listed.len() as u64);
        assert_eq!(session.last_message_preview.as_deref(), Some(listed.last().unwrap().content.as_str()));
    }
}

/// Registrations racing on an empty store: exactly one becomes admin.
pub fn concurrent_first_registrations_make_one_admin(new_store: Factory) {
    let t = new_store();
    let store: &dyn SessionStore = t.store.as_ref();
    let roles: Vec<UserRole> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                scope.spawn(move || {
                    store.create_user(&new_user(&format!("racer{i}"), "racing password")).unwrap().role
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(roles.iter().filter(|r| **r == UserRole::Admin).count(), 1, "{roles:?}");
}

/// The same refresh token presented twice at once: at most one new pair comes out.
pub fn concurrent_refreshes_of_one_token_succeed_at_most_once(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let store: &dyn SessionStore = t.store.as_ref();
    for _ in 0..5 {
        let pair = store.issue_tokens(&lina).unwrap();
        let token = pair.refresh_token.as_str();
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(move || store.refresh(token).is_ok())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().filter(|ok| **ok).count() <= 1, "{results:?}");
    }
}
