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

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom_plans: i64,
}

#[test]
fn the_active_page_keeps_one_generic_plan_instead_of_planning_each_call() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let chat = Uuid::from_u128(1);
    for after in 0..12 {
        assert!(
            super::owned_active_page(&mut conn, chat, "alice", after, 21)
                .unwrap()
                .is_empty()
        );
    }
    let plans: Plans = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%FROM chat_active_lines a%'",
    )
    .get_result(&mut conn)
    .unwrap();
    // PostgreSQL tries five custom plans, then keeps the generic one when it is no
    // dearer: with every value an init plan, it never is.
    assert!(
        plans.custom_plans <= 5,
        "custom plans: {}",
        plans.custom_plans
    );
    assert!(
        plans.generic_plans >= 7,
        "generic plans: {}",
        plans.generic_plans
    );
}
