//! `sslmode` reaches libpq: the pool's connections are encrypted or not as configured
//! (`pg_stat_ssl`, read from another connection).

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use infra_postgres::testing::TestDb;
use infra_postgres::{PgStore, SslMode};

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether the connections named `app` use TLS (None: there are none).
fn encrypted(db: &TestDb, app: &str) -> Option<bool> {
    diesel::sql_query(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1 LIMIT 1",
    )
    .bind::<Text, _>(app)
    .get_result::<Ssl>(&mut db.connect())
    .optional()
    .unwrap()
    .map(|r| r.ssl)
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    ssl: String,
}

#[tokio::test]
async fn the_configured_sslmode_is_the_one_libpq_uses() {
    let db = TestDb::new();
    let server_ssl = diesel::sql_query("SELECT current_setting('ssl') AS ssl")
        .get_result::<Setting>(&mut db.connect())
        .unwrap()
        .ssl
        == "on";
    for mode in [SslMode::Disable, SslMode::Require] {
        let mut cfg = db.config();
        cfg.sslmode = mode;
        cfg.application_name = format!("ssl-test-{}", uuid::Uuid::now_v7());
        let store = PgStore::new(&cfg).unwrap();
        let pinged = store.ping().await;
        match (mode, server_ssl) {
            (SslMode::Require, false) => {
                assert!(
                    pinged.is_err(),
                    "require against a server without TLS must fail"
                );
            }
            _ => {
                pinged.unwrap();
                assert_eq!(
                    encrypted(&db, &cfg.application_name),
                    Some(mode == SslMode::Require),
                    "{mode}"
                );
            }
        }
    }
}
