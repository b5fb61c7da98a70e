//! The store's behaviour suite (`suite/`), run against SQLite and against PostgreSQL, plus
//! what only one backend has (files, schemas).

mod common;
mod suite;

/// Every behaviour on a fresh SQLite file.
mod sqlite {
    crate::suite::behaviour_tests!(crate::common::sqlite);
}

/// Every behaviour in a fresh schema of the local PostgreSQL server. These fail, with a clear
/// message, when the server is unreachable.
mod postgres {
    crate::suite::behaviour_tests!(crate::common::postgres);
}

mod backend_specific {
    use modelforge_core::{StoreError, UserStore};
    use modelforge_store::{PgStore, SqliteStore, StoreOptions};

    use crate::common::{SECRET, options, postgres_url};

    #[test]
    fn a_short_secret_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        for secret in [Vec::new(), vec![1; 31]] {
            let err = SqliteStore::open(&dir.path().join("x.db"), StoreOptions::with_secret(secret.clone()))
                .unwrap_err();
            assert!(matches!(err, StoreError::InvalidInput { field: "jwt_secret", .. }), "{err:?}");
            let err = PgStore::open_scratch(&postgres_url(), StoreOptions::with_secret(secret)).unwrap_err();
            assert!(matches!(err, StoreError::InvalidInput { field: "jwt_secret", .. }), "{err:?}");
        }
    }

    #[test]
    fn sqlite_open_creates_parent_directories_and_reports_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b").join("store.db");
        let store = SqliteStore::open(&nested, options()).unwrap();
        assert!(nested.is_file());
        assert_eq!(store.path(), nested);
        // A directory where the file should be cannot be opened as a database.
        match SqliteStore::open(dir.path(), StoreOptions::with_secret(SECRET.to_vec())).unwrap_err() {
            StoreError::Database { context, .. } => {
                assert!(context.contains("opening the database"), "{context}")
            }
            other => panic!("expected a database error, got {other:?}"),
        }
    }

    #[test]
    fn sqlite_files_use_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, options()).unwrap();
        store.create_user(&crate::common::new_user("lina", "long enough")).unwrap();
        assert!(dir.path().join("store.db-wal").exists(), "a WAL file sits beside the database");
    }

    #[test]
    fn postgres_schemas_keep_stores_apart_and_scratch_ones_are_dropped() {
        let url = postgres_url();
        let a = PgStore::open_scratch(&url, options()).unwrap();
        let b = PgStore::open_scratch(&url, options()).unwrap();
        let schema = a.schema().unwrap().to_owned();
        assert_ne!(a.schema(), b.schema());
        let user = a.create_user(&crate::common::new_user("lina", "long enough")).unwrap();
        assert!(b.login("lina", "long enough").is_err(), "another schema has no lina");
        assert_eq!(a.login("lina", "long enough").unwrap().id, user.id);
        // Reopening the schema finds the same data (migrations are not re-applied).
        let again = PgStore::open_in_schema(&url, &schema, options()).unwrap();
        assert_eq!(again.login("lina", "long enough").unwrap().id, user.id);
        drop(again);
        assert_eq!(schemas_named(&url, &schema), 1);
        drop(a);
        assert_eq!(schemas_named(&url, &schema), 0, "the scratch schema was dropped with its store");
        let bad = PgStore::open_in_schema(&url, "x\"; DROP SCHEMA public; --", options()).unwrap_err();
        assert!(matches!(bad, StoreError::InvalidInput { field: "schema", .. }), "{bad:?}");
    }

    fn schemas_named(url: &str, schema: &str) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(url).unwrap();
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = '{schema}'"
        ))
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
    }

    #[test]
    fn an_unreachable_postgres_is_a_clear_database_error() {
        let err = PgStore::open("postgres://nobody:secret@127.0.0.1:1/none", options()).unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
        assert!(shown.contains("127.0.0.1:1") && !shown.contains("secret"), "{shown}");
    }
}
