//! The branch reads are planned once per connection, not on every call.

use crate::testing::TestDb;
use diesel::prelude::*;
use diesel::sql_types::Text;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = Text)]
    statement: String,
}

#[test]
fn branch_page_and_history_are_prepared_statements_kept_by_the_connection() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let (chat, leaf) = (Uuid::from_u128(1), Uuid::from_u128(2));
    for after in [0, 5] {
        assert!(super::page(&mut conn, chat, leaf, after, 21)
            .unwrap()
            .is_empty());
        assert!(super::history(&mut conn, chat, leaf, 200)
            .unwrap()
            .is_empty());
    }
    let kept: Vec<Statement> =
        diesel::sql_query("SELECT statement FROM pg_prepared_statements ORDER BY statement")
            .load(&mut conn)
            .unwrap();
    let count = |start: &str| {
        kept.iter()
            .filter(|s| s.statement.starts_with(start))
            .count()
    };
    assert_eq!(
        count("WITH RECURSIVE down AS"),
        1,
        "the page, prepared once"
    );
    assert_eq!(
        count("WITH RECURSIVE blocks AS"),
        1,
        "the history, prepared once"
    );
}
