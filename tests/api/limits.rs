//! What one client may hold of the server: header time, connections, body
//! memory; and requests whose length is ambiguous.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads what the server sends until it closes or `within` passes; `None` if
/// it neither answered nor closed by then.
async fn answer_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) if !answer.is_empty() => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

async fn healthz_over(stream: &mut TcpStream) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    answer_within(stream, Duration::from_secs(10)).await
}

#[tokio::test]
async fn a_client_that_sends_its_headers_slowly_is_cut_off_while_others_are_served() {
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.http.header_timeout = Duration::from_millis(800);
    })
    .await;
    let mut slow = TcpStream::connect(app.address).await.unwrap();
    let started = Instant::now();
    let head = b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nX-Padding: ";
    let mut cut_off = false;
    for byte in head.iter().cycle().take(200) {
        // One byte every 50 ms: the head never completes.
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            Ok(Ok(_)) => {
                // An error answer (408) before the close: keep reading to the end.
            }
            Err(_) => {}
        }
        // Meanwhile everybody else is answered.
        if started.elapsed() < Duration::from_millis(100) {
            let health = app.client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(health.status(), 200);
        }
    }
    assert!(
        cut_off,
        "a client sending one byte per 50 ms kept its connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off only after {:?}",
        started.elapsed()
    );
    let order = shopify_order(9001, &[(1, COURSE_A, None)], Some("a@example.org"), "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.http.max_connections = 2;
        c.http.header_timeout = Duration::from_secs(60);
    })
    .await;
    // Two clients hold the two connections without sending anything.
    let idle_one = TcpStream::connect(app.address).await.unwrap();
    let _idle_two = TcpStream::connect(app.address).await.unwrap();
    // A third connection completes its handshake (the kernel's backlog),
    // but is not answered.
    let mut third = TcpStream::connect(app.address).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        answer_within(&mut third, Duration::from_millis(700)).await,
        None,
        "a third connection was served past a cap of two"
    );

    drop(idle_one);
    let answer = answer_within(&mut third, Duration::from_secs(10))
        .await
        .expect("served once a connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn request_bodies_wait_for_their_share_of_the_memory_bound() {
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.max_body = 16 * 1024;
        c.http.request_memory = 16 * 1024;
    })
    .await;
    // One client declares a body of the whole bound and sends half of it.
    let mut hog = TcpStream::connect(app.address).await.unwrap();
    let body = vec![b' '; 16 * 1024];
    let head = format!(
        "POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    hog.write_all(head.as_bytes()).await.unwrap();
    hog.write_all(&body[..8 * 1024]).await.unwrap();

    let order = shopify_order(9002, &[(1, COURSE_A, None)], Some("a@example.org"), "paid");
    let waiting = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/webhooks/shopify");
        let raw = serde_json::to_vec(&order).unwrap();
        async move {
            client
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Shopify-Topic", "orders/create")
                .header("X-Shopify-Shop-Domain", SHOP)
                .header("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, &raw))
                .body(raw)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let blocked = tokio::time::timeout(Duration::from_millis(700), async {
        while !waiting.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(blocked.is_err(), "a body was read past the memory bound");

    hog.write_all(&body[8 * 1024..]).await.unwrap();
    let hog_answer = answer_within(&mut hog, Duration::from_secs(2)).await;
    assert!(
        hog_answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 400")),
        "{hog_answer:?}"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap(),
        200
    );
}

#[tokio::test]
async fn a_request_with_both_lengths_is_refused_and_stored() {
    let app = spawn_app(Db::Sqlite).await;
    let body = br#"{"id": 1, "line_items": []}"#;
    let signature = sign(SHOPIFY_KEY, body);
    for both in [
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        ),
        format!(
            "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
            body.len()
        ),
    ] {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        let request = format!(
            "POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             X-Shopify-Topic: orders/create\r\nX-Shopify-Shop-Domain: {SHOP}\r\n\
             X-Shopify-Hmac-Sha256: {signature}\r\n{both}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            body.len(),
            String::from_utf8_lossy(body)
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = answer_within(&mut stream, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("ambiguous"), "{answer}");
    }
    let rejected = app.store.rejected_requests(10, 0, false).await.unwrap();
    assert_eq!(rejected.requests.len(), 2);
    assert!(rejected.requests.iter().all(|r| r.http_status == 400
        && r.reason
            .as_deref()
            .is_some_and(|r| r.contains("Content-Length and Transfer-Encoding"))));

    // Anywhere else too; and a keep-alive connection before it is not disturbed.
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = answer_within(&mut stream, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer}");

    let mut plain = TcpStream::connect(app.address).await.unwrap();
    let health = healthz_over(&mut plain).await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
