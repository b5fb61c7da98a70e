//! Whether people may register: an installation-wide switch an admin sets, which every replica
//! sharing the database sees, and which the store records without enforcing.

use modelforge_core::{Actor, UserId, UserRole};

use crate::common::{Factory, assert_denied, options};

pub fn registration_is_open_until_an_admin_closes_it(new_store: Factory) {
    let t = new_store();
    assert!(t.store.registration_open().unwrap(), "open on a new store");
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    assert!(t.store.registration_open().unwrap());

    // Only an admin, as the store knows it, may switch it.
    assert_denied(t.store.set_registration_open(&lina, false));
    assert_denied(t.store.set_registration_open(&Actor { role: UserRole::Admin, ..lina }, false));
    let stranger = Actor { user_id: UserId::new(), role: UserRole::Admin };
    assert_denied(t.store.set_registration_open(&stranger, false));
    assert!(t.store.registration_open().unwrap(), "refused calls changed nothing");

    t.store.set_registration_open(&admin, false).unwrap();
    assert!(!t.store.registration_open().unwrap());
    let replica = t.reopen(options());
    assert!(!replica.registration_open().unwrap(), "every replica sees the switch");

    // The store does not enforce it: an admin's tool still adds accounts.
    let (omar, _) = t.register("omar");
    assert_eq!(omar.role, UserRole::User);

    replica.set_registration_open(&admin, true).unwrap();
    assert!(t.store.registration_open().unwrap());
    replica.set_registration_open(&admin, true).unwrap();
    assert!(t.store.registration_open().unwrap(), "setting it twice is fine");
    assert_eq!(t.count_rows("settings"), 1);
}

pub fn a_disabled_or_demoted_admin_cannot_switch_registration(new_store: Factory) {
    let t = new_store();
    let (_, first) = t.register("first");
    let (_, second) = t.register("second");
    t.store.set_user_role(&first, second.user_id, UserRole::Admin).unwrap();
    let second = Actor { role: UserRole::Admin, ..second };
    t.store.set_registration_open(&second, false).unwrap();
    assert!(!t.store.registration_open().unwrap());

    t.store.set_user_disabled(&first, second.user_id, true).unwrap();
    assert_denied(t.store.set_registration_open(&second, true));
    t.store.set_user_disabled(&first, second.user_id, false).unwrap();
    t.store.set_user_role(&first, second.user_id, UserRole::User).unwrap();
    assert_denied(t.store.set_registration_open(&second, true));
    assert!(!t.store.registration_open().unwrap(), "still closed");
    t.store.set_registration_open(&first, true).unwrap();
    assert!(t.store.registration_open().unwrap());
}
