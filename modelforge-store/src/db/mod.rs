//! What both diesel stores share: the schema, the row types, error mapping and the pool.
//! The queries themselves are in `queries/`, compiled once per backend.

pub(crate) mod errors;
pub(crate) mod pool;
pub(crate) mod rows;
pub(crate) mod schema;

/// SQL functions the query builder lacks.
pub(crate) mod sql {
    use diesel::sql_types::Text;

    diesel::define_sql_function! {
        /// ASCII lowercase on SQLite, full Unicode lowercase on PostgreSQL.
        fn lower(x: Text) -> Text;
    }
}
