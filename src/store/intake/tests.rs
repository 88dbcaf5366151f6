//! Intake against real databases: a failing delivery among good ones.

use sqlx::Row;

use super::writer::Commit;
use super::*;
use crate::domain::{Delivery, Order, Platform, Rejection, Verified};
use crate::store::dialect::Dialect;
use crate::store::sql::{text, SqlStore};
use crate::store::StoreError;

fn refused(endpoint: &str) -> IntakeWrite {
    IntakeWrite {
        request: RequestRecord {
            platform: Platform::Shopify,
            method: "POST".into(),
            endpoint: endpoint.into(),
            source_ip: None,
            headers: vec![],
            body: b"{}".to_vec(),
            body_size: 2,
            body_truncated: false,
            fetched: false,
            envelope: Default::default(),
        },
        judgement: Judgement::Rejected(Rejection::Forbidden("no signature".into())),
        policy: IntakePolicy::default(),
    }
}

/// A store on a fresh database whose `requests` refuse the endpoint `/refused`.
async fn refusing_store(dialect: Dialect, dir: &std::path::Path) -> SqlStore {
    let url = match dialect {
        Dialect::Sqlite => format!("sqlite://{}", dir.join("intake.sqlite3").display()),
        Dialect::Postgres | Dialect::MySql => fresh_server_database(dialect).await,
    };
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let trigger: &[&str] = match dialect {
        Dialect::Sqlite => &[
            "CREATE TRIGGER refuse BEFORE INSERT ON requests \
             WHEN NEW.endpoint = '/refused' BEGIN SELECT RAISE(FAIL, 'refused'); END",
            "CREATE TRIGGER refuse_item BEFORE INSERT ON enrollments \
             WHEN NEW.sku = 'REFUSED' BEGIN SELECT RAISE(FAIL, 'refused'); END",
        ],
        Dialect::Postgres => &[
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN \
             IF NEW.endpoint = '/refused' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION refuse()",
            "CREATE FUNCTION refuse_item() RETURNS trigger AS $$ BEGIN \
             IF NEW.sku = 'REFUSED' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_item BEFORE INSERT ON enrollments FOR EACH ROW EXECUTE FUNCTION refuse_item()",
        ],
        Dialect::MySql => &[
            "CREATE TRIGGER refuse BEFORE INSERT ON requests FOR EACH ROW BEGIN \
             IF NEW.endpoint = '/refused' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; \
             END IF; END",
            "CREATE TRIGGER refuse_item BEFORE INSERT ON enrollments FOR EACH ROW BEGIN \
             IF NEW.sku = 'REFUSED' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'; \
             END IF; END",
        ],
    };
    for statement in trigger {
        sqlx::raw_sql(statement)
            .execute(&store.writer)
            .await
            .unwrap();
    }
    store
}

/// A new database on the test server (as the integration suite makes them).
async fn fresh_server_database(dialect: Dialect) -> String {
    use sqlx::Connection;
    let (variable, default) = match dialect {
        Dialect::Postgres => (
            "EDX_WEBHOOKS_TEST_POSTGRES",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        _ => (
            "EDX_WEBHOOKS_TEST_MYSQL",
            "mysql://root@127.0.0.1:3306/test",
        ),
    };
    let server = std::env::var(variable).unwrap_or_else(|_| default.into());
    let name = format!(
        "ew_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("this test needs its server at {server}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn stored_endpoints(store: &SqlStore) -> Vec<String> {
    let rows = sqlx::query("SELECT endpoint FROM requests ORDER BY id")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    rows.iter().map(|r| text(r, "endpoint").unwrap()).collect()
}

fn outcomes(results: &[Result<Stored, StoreError>]) -> Vec<bool> {
    results.iter().map(Result::is_ok).collect()
}

async fn a_write_that_fails_leaves_its_neighbours_stored(dialect: Dialect) {
    let dir = tempfile::tempdir().unwrap();
    let store = refusing_store(dialect, dir.path()).await;
    let batch = [refused("/a"), refused("/refused"), refused("/b")];

    let results = store.clone().commit(&batch).await.unwrap();
    assert_eq!(outcomes(&results), [true, false, true]);
    assert_eq!(stored_endpoints(&store).await, ["/a", "/b"]);

    // Alone, the failing one fails by itself.
    let results = store.clone().commit(&batch[1..2]).await.unwrap();
    assert_eq!(outcomes(&results), [false]);

    if let Some(mut own) = super::embedded::EmbeddedWriter::open(&store).unwrap() {
        let results = own.commit(&batch).await.unwrap();
        assert_eq!(outcomes(&results), [true, false, true]);
        assert_eq!(stored_endpoints(&store).await, ["/a", "/b", "/a", "/b"]);
    }
}

/// A trusted order with one line item of `sku`, received at `endpoint`.
fn order_with_sku(endpoint: &str, order_id: &str, sku: &str) -> IntakeWrite {
    IntakeWrite {
        request: refused(endpoint).request,
        judgement: Judgement::Trusted(Verified {
            shop: "shop.example".into(),
            topic: "orders/create".into(),
            webhook_id: None,
            delivery: Delivery::Order(Order {
                id: order_id.into(),
                number: format!("#{order_id}"),
                buyer_email: Some("buyer@example.org".into()),
                paid: true,
                cancelled: false,
                refunded_items: vec![],
                items: vec![crate::domain::LineItem {
                    id: "1".into(),
                    sku: sku.into(),
                    course: crate::domain::CourseRef::Sku(sku.into()),
                    learner: crate::domain::LearnerEmail::parse("learner@example.org"),
                }],
            }),
        }),
        policy: IntakePolicy::default(),
    }
}

async fn stored_outcomes(store: &SqlStore) -> Vec<(String, i64, String)> {
    let rows = sqlx::query("SELECT endpoint, http_status, outcome FROM requests ORDER BY id")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                text(r, "endpoint").unwrap(),
                r.try_get::<i64, _>("http_status").unwrap(),
                text(r, "outcome").unwrap(),
            )
        })
        .collect()
}

/// A trusted delivery whose content the database refuses is stored with
/// the reason and answered, never left to fail the same way on every
/// redelivery; only when not even its request can be stored is it an error.
async fn a_delivery_the_database_refuses_is_stored_with_its_reason(dialect: Dialect) {
    let dir = tempfile::tempdir().unwrap();
    let store = refusing_store(dialect, dir.path()).await;
    let batch = [
        order_with_sku("/a", "1", "COURSE"),
        order_with_sku("/b", "2", "REFUSED"),
        order_with_sku("/c", "3", "COURSE"),
    ];
    let taken = |results: &[Result<Stored, StoreError>]| -> Vec<Option<crate::domain::Acceptance>> {
        results
            .iter()
            .map(|r| match r {
                Ok(Stored {
                    outcome: Outcome::Taken(taken),
                    ..
                }) => Some(taken.acceptance),
                _ => None,
            })
            .collect()
    };

    let results = store.clone().commit(&batch).await.unwrap();
    use crate::domain::Acceptance::{Accepted, Ignored};
    assert_eq!(
        taken(&results),
        [Some(Accepted), Some(Ignored), Some(Accepted)]
    );
    assert!(results[1].as_ref().unwrap().outcome.order_id().is_none());
    // Alone, too.
    let results = store.clone().commit(&batch[1..2]).await.unwrap();
    assert_eq!(taken(&results), [Some(Ignored)]);
    let ignored = |e: &str| (e.to_owned(), 200, "ignored".to_owned());
    let accepted = |e: &str| (e.to_owned(), 200, "accepted".to_owned());
    assert_eq!(
        stored_outcomes(&store).await,
        [accepted("/a"), ignored("/b"), accepted("/c"), ignored("/b")]
    );
    let reason: String = sqlx::query("SELECT reason FROM requests WHERE endpoint = '/b'")
        .fetch_all(&store.reader)
        .await
        .unwrap()
        .iter()
        .map(|r| text(r, "reason").unwrap())
        .next()
        .unwrap();
    assert!(reason.contains("could not be stored"), "{reason}");

    // Not even the request can be stored: the database is the problem.
    let both = [order_with_sku("/refused", "4", "REFUSED")];
    let results = store.clone().commit(&both).await.unwrap();
    assert!(results[0].is_err());

    if let Some(mut own) = super::embedded::EmbeddedWriter::open(&store).unwrap() {
        let results = own.commit(&batch).await.unwrap();
        use crate::domain::Acceptance::Duplicate;
        assert_eq!(
            taken(&results),
            [Some(Duplicate), Some(Ignored), Some(Duplicate)]
        );
        let results = own.commit(&both).await.unwrap();
        assert!(results[0].is_err());
    }
}

/// A batch creates its new orders together, before its deliveries are taken:
/// each delivery still finds its own order, a second delivery of one order
/// finds the order the first made, an order stored before is only found, and
/// a refund ahead of its order's creation in the batch finds none.
async fn a_batch_creates_its_orders_as_its_deliveries_would_one_by_one(dialect: Dialect) {
    let dir = tempfile::tempdir().unwrap();
    let store = refusing_store(dialect, dir.path()).await;
    let with_webhook = |mut write: IntakeWrite, id: &str| {
        if let Judgement::Trusted(verified) = &mut write.judgement {
            verified.webhook_id = Some(id.into());
        }
        write.request.envelope.webhook_id = Some(id.into());
        write
    };
    let before = [
        with_webhook(order_with_sku("/old", "2", "OLD"), "w2"),
        with_webhook(order_with_sku("/six", "6", "SIX"), "w6"),
    ];
    store.clone().commit(&before).await.unwrap();

    let mut refund = order_with_sku("/refund", "9", "NINE");
    if let Judgement::Trusted(verified) = &mut refund.judgement {
        verified.topic = "refunds/create".into();
        verified.delivery = Delivery::Refund {
            order_id: "9".into(),
            line_items: vec!["1".into()],
        };
    }
    let batch = [
        order_with_sku("/one", "1", "ONE"),
        // Taken in before by its webhook id, whatever it now says.
        with_webhook(order_with_sku("/old-again", "2", "CHANGED"), "w2"),
        refund,
        order_with_sku("/three", "3", "THREE"),
        order_with_sku("/one-again", "1", "ONE"),
        order_with_sku("/nine", "9", "NINE"),
        with_webhook(order_with_sku("/six-again", "6", "CHANGED"), "w6"),
    ];
    let results = store.clone().commit(&batch).await.unwrap();
    let taken: Vec<_> = results
        .iter()
        .map(|r| match r {
            Ok(Stored {
                outcome: Outcome::Taken(taken),
                ..
            }) => (taken.acceptance, taken.created_order, taken.order_id),
            other => panic!("not taken: {other:?}"),
        })
        .collect();
    use crate::domain::Acceptance::{Accepted, Duplicate, Ignored};
    let kinds: Vec<_> = taken.iter().map(|(a, created, _)| (*a, *created)).collect();
    assert_eq!(
        kinds,
        [
            (Accepted, true),
            (Duplicate, false),
            (Ignored, false),
            (Accepted, true),
            (Duplicate, false),
            (Accepted, true),
            (Duplicate, false),
        ]
    );
    assert_eq!(taken[0].2, taken[4].2);
    assert_eq!(taken[2].2, None);

    // Each order holds its own item, and the ids given are the orders'.
    let rows = sqlx::query(
        "SELECT o.id, o.external_id, e.sku FROM orders o JOIN enrollments e ON e.order_id = o.id ORDER BY o.external_id",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap();
    let stored: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("id").unwrap(),
                text(r, "external_id").unwrap(),
                text(r, "sku").unwrap(),
            )
        })
        .collect();
    let by_order = |external_id: &str| {
        let (id, _, sku) = stored.iter().find(|(_, e, _)| e == external_id).unwrap();
        (Some(*id), sku.as_str())
    };
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert_eq!(by_order("6"), (taken[6].2, "SIX"));
    assert_eq!(by_order("1"), (taken[0].2, "ONE"));
    assert_eq!(by_order("2"), (taken[1].2, "OLD"));
    assert_eq!(by_order("3"), (taken[3].2, "THREE"));
    assert_eq!(by_order("9"), (taken[5].2, "NINE"));
}

#[tokio::test]
async fn a_batch_creates_its_orders_as_its_deliveries_would_one_by_one_sqlite() {
    a_batch_creates_its_orders_as_its_deliveries_would_one_by_one(Dialect::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: run with --include-ignored (server: EDX_WEBHOOKS_TEST_POSTGRES)"]
async fn a_batch_creates_its_orders_as_its_deliveries_would_one_by_one_postgres() {
    a_batch_creates_its_orders_as_its_deliveries_would_one_by_one(Dialect::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: run with --include-ignored (server: EDX_WEBHOOKS_TEST_MYSQL)"]
async fn a_batch_creates_its_orders_as_its_deliveries_would_one_by_one_mysql() {
    a_batch_creates_its_orders_as_its_deliveries_would_one_by_one(Dialect::MySql).await;
}

#[tokio::test]
async fn a_delivery_the_database_refuses_is_stored_with_its_reason_sqlite() {
    a_delivery_the_database_refuses_is_stored_with_its_reason(Dialect::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: run with --include-ignored (server: EDX_WEBHOOKS_TEST_POSTGRES)"]
async fn a_delivery_the_database_refuses_is_stored_with_its_reason_postgres() {
    a_delivery_the_database_refuses_is_stored_with_its_reason(Dialect::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: run with --include-ignored (server: EDX_WEBHOOKS_TEST_MYSQL)"]
async fn a_delivery_the_database_refuses_is_stored_with_its_reason_mysql() {
    a_delivery_the_database_refuses_is_stored_with_its_reason(Dialect::MySql).await;
}

#[tokio::test]
async fn a_write_that_fails_leaves_its_neighbours_stored_sqlite() {
    a_write_that_fails_leaves_its_neighbours_stored(Dialect::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: run with --include-ignored (server: EDX_WEBHOOKS_TEST_POSTGRES)"]
async fn a_write_that_fails_leaves_its_neighbours_stored_postgres() {
    a_write_that_fails_leaves_its_neighbours_stored(Dialect::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: run with --include-ignored (server: EDX_WEBHOOKS_TEST_MYSQL)"]
async fn a_write_that_fails_leaves_its_neighbours_stored_mysql() {
    a_write_that_fails_leaves_its_neighbours_stored(Dialect::MySql).await;
}
