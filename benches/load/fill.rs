//! Stores a long history fast: copies of the orders the real intake took in,
//! made by the database itself (`INSERT … SELECT`), each copy with distinct
//! ids, order numbers, webhook ids and learner emails.

use std::time::Instant;

use sqlx::{AnyConnection, Connection, Row};

use crate::server::Database;

/// Copies the orders stored now (with their requests and enrollments) until
/// `target` orders are stored. Returns how many are, and the seconds it took.
pub async fn fill(database: &Database, target: usize) -> (i64, f64) {
    let start = Instant::now();
    let mut conn = connect(database).await;
    let max = |table: &str| format!("SELECT COALESCE(MAX(id), 0) AS m FROM {table}");
    let mut top = [0i64; 3];
    for (i, table) in ["orders", "requests", "enrollments"].iter().enumerate() {
        top[i] = sqlx::query(&max(table))
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get("m")
            .unwrap();
    }
    let [orders, requests, enrollments] = top;
    assert!(orders > 0, "nothing to copy: intake stored no order");
    let cat = |a: &str, b: &str| match database.kind.as_str() {
        "mysql" => format!("CONCAT({a}, {b})"),
        _ => format!("{a} || {b}"),
    };
    let mut stored = count(&mut conn).await;
    let mut copy = 1;
    while (stored as usize) < target {
        let take = (target as i64 - stored).min(orders);
        let (o, r, e) = (copy * orders, copy * requests, copy * enrollments);
        let tag = format!("'.{copy}'");
        let statements = [
            format!(
                "INSERT INTO orders (id, platform, shop, external_id, number, buyer_email, paid, cancelled, \
                 state, created_at, updated_at) \
                 SELECT id + {o}, platform, shop, {}, {}, buyer_email, paid, cancelled, state, created_at, updated_at \
                 FROM orders WHERE id <= {take}",
                cat("external_id", &tag),
                cat("number", &tag)
            ),
            format!(
                "INSERT INTO requests (id, received_at, platform, method, endpoint, source_ip, headers, body, \
                 body_size, body_truncated, http_status, outcome, reason, shop, topic, webhook_id, order_id) \
                 SELECT id + {r}, received_at, platform, method, endpoint, source_ip, headers, body, body_size, \
                 body_truncated, http_status, outcome, reason, shop, topic, {}, order_id + {o} \
                 FROM requests WHERE id <= {requests} AND order_id <= {take}",
                cat("webhook_id", &tag)
            ),
            format!(
                "INSERT INTO enrollments (id, order_id, line_item_id, part, sku, course_key, mode, email, action, \
                 state, reason, attempts, due_at, before_enrollment, account_wait_since, created_at, updated_at) \
                 SELECT id + {e}, order_id + {o}, line_item_id, part, sku, course_key, mode, {}, action, state, \
                 reason, attempts, due_at, before_enrollment, account_wait_since, created_at, updated_at \
                 FROM enrollments WHERE id <= {enrollments} AND order_id <= {take}",
                cat(&format!("'c{copy}.'"), "email")
            ),
        ];
        let mut tx = conn.begin().await.unwrap();
        for statement in &statements {
            sqlx::query(statement).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        stored += take;
        copy += 1;
    }
    // Statistics as the servers' own upkeep would have them after a slow
    // growth; a bulk copy leaves them describing the small tables.
    let analyze = match database.kind.as_str() {
        "postgres" => Some("ANALYZE"),
        "mysql" => Some("ANALYZE TABLE orders, requests, enrollments"),
        _ => None,
    };
    if let Some(analyze) = analyze {
        sqlx::query(analyze).execute(&mut conn).await.unwrap();
    }
    if database.kind == "postgres" {
        for table in ["orders", "requests", "enrollments"] {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    (count(&mut conn).await, start.elapsed().as_secs_f64())
}

/// The email of a learner of a copy in the middle of the history.
pub fn middle_email(run_email: &str, stored: i64, copied_from: i64) -> String {
    let copies = stored / copied_from.max(1);
    if copies < 1 {
        return run_email.to_owned();
    }
    format!("c{}.{run_email}", (copies + 1) / 2)
}

/// Bytes the database takes, all tables and indexes, and the orders stored.
pub async fn size(database: &Database) -> (i64, i64) {
    let mut conn = connect(database).await;
    let sql = match database.kind.as_str() {
        "postgres" => "SELECT pg_database_size(current_database()) AS bytes",
        "mysql" => {
            // The sizes information_schema tells are those of the last analysis.
            sqlx::query("ANALYZE TABLE orders, requests, enrollments")
                .execute(&mut conn)
                .await
                .unwrap();
            "SELECT CAST(SUM(data_length + index_length) AS SIGNED) AS bytes \
             FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        _ => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await
                .unwrap();
            "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
        }
    };
    let bytes: i64 = sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("bytes")
        .unwrap();
    (bytes, count(&mut conn).await)
}

async fn count(conn: &mut AnyConnection) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM orders")
        .fetch_one(conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

pub async fn connect(database: &Database) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&database.url)
        .await
        .expect("the benchmark's database")
}
