//! Deliveries a shop should never send but a signed one may: each still
//! stored, answered 200, and every line item enrolled.

use serde_json::{json, Value};

use crate::helpers::*;

const COURSE_C: &str = "course-v1:Org+CourseC+2026";
const COURSE_D: &str = "course-v1:Org+CourseD+2026";

async fn status_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_each_database! {
async fn line_items_that_share_an_id_each_get_their_enrollment(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        4001,
        &[
            (7, COURSE_A, Some("ada@example.org")),
            (7, COURSE_B, Some("ada@example.org")),
            (7, COURSE_A, Some("grace@example.org")),
        ],
        Some("buyer@example.org"),
        "paid",
    );

    let (status, body) = status_of(app.shopify("orders/create", &order).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));

    let view = app.wait_for_order("4001", SHOP, "enrolled").await;
    assert_eq!(view.items.len(), 3);
    for (course, email) in [
        (COURSE_A, "ada@example.org"),
        (COURSE_B, "ada@example.org"),
        (COURSE_A, "grace@example.org"),
    ] {
        assert!(app.lms.is_enrolled(course, email), "{email} in {course}");
    }

    // The same order again (a redelivery, an update) finds each item again.
    let (status, body) = status_of(app.shopify("orders/updated", &order).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(app.order("4001", SHOP).await.items.len(), 3);
}

async fn line_item_ids_that_meet_after_normalising_or_cutting_are_kept_apart(db: Db) {
    let app = spawn_app(db).await;
    let long = "x".repeat(300);
    let mut order = woo_order(
        5001,
        &[
            (1, COURSE_A, Some("ada@example.org")),
            (1, COURSE_B, Some("ada@example.org")),
            (1, COURSE_C, Some("ada@example.org")),
            (1, COURSE_D, Some("ada@example.org")),
            (1, COURSE_A, Some("grace@example.org")),
            (1, COURSE_B, Some("grace@example.org")),
        ],
        "buyer@example.org",
        true,
    );
    let items = order["line_items"].as_array_mut().unwrap();
    // A number and the same number as a string.
    items[0]["id"] = json!(42);
    items[1]["id"] = json!(" 42 ");
    // An id-less item (its position gives "line-3") and a real id "line-3".
    items[2].as_object_mut().unwrap().remove("id");
    items[3]["id"] = json!("line-3");
    // Ids longer than what is kept, the same up to there.
    items[4]["id"] = json!(format!("{long}a"));
    items[5]["id"] = json!(format!("{long}b"));

    let (status, body) = status_of(app.woocommerce("order.created", &order).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));

    let view = app.wait_for_order("5001", WOO_SOURCE, "enrolled").await;
    assert_eq!(view.items.len(), 6);
    for (course, email) in [
        (COURSE_A, "ada@example.org"),
        (COURSE_B, "ada@example.org"),
        (COURSE_C, "ada@example.org"),
        (COURSE_D, "ada@example.org"),
        (COURSE_A, "grace@example.org"),
        (COURSE_B, "grace@example.org"),
    ] {
        assert!(app.lms.is_enrolled(course, email), "{email} in {course}");
    }

    let (status, body) = status_of(app.woocommerce("order.updated", &order).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(app.order("5001", WOO_SOURCE).await.items.len(), 6);
}
}
