//! Faults of the LMS: an answer that is not the bulk enrollment answer, one
//! that comes too late, one cut off mid-way: each is retried, never taken for
//! an enrollment.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;
use crate::lms::{FakeLms, Reply};

on_each_database! {
    async fn html_and_garbage_answers_are_retried_and_never_taken_for_an_enrollment(db: Db) {
        let app = spawn_app(db).await;
        app.lms.with(|s| {
            s.script.extend([
                Reply::Html(200, "<html><body>Sign in to continue</body></html>"),
                Reply::Html(502, "<html><h1>502 Bad Gateway</h1></html>"),
                Reply::Html(200, "{\"courses\": 7"),
            ])
        });
        let order = shopify_order(9101, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

        let view = app.wait_for_order("9101", SHOP, "enrolled").await;

        assert_eq!(app.lms.calls().len(), 4);
        let enrollment = view
            .items
            .iter()
            .find(|i| i.line_item_id == "1")
            .expect("line item stored");
        let attempts = app.store.attempts(enrollment.id).await.unwrap();
        let outcomes: Vec<_> = attempts
            .iter()
            .map(|a| (a.http_status, a.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (Some(200), "retry"),
                (Some(502), "retry"),
                (Some(200), "retry"),
                (Some(200), "enrolled"),
            ]
        );
        assert!(attempts[0].detail.contains("unexpected bulk enrollment answer"), "{:?}", attempts[0].detail);
        assert!(attempts[2].detail.contains("unexpected bulk enrollment answer"), "{:?}", attempts[2].detail);
        assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
        let ready = reqwest::get(app.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "the service stays ready");
    }

    async fn an_lms_slower_than_the_timeout_is_retried_and_its_late_answer_never_taken(db: Db) {
        let app = spawn_app_with(db, |c| {
            c.lms.timeout = Duration::from_secs(1);
            c.retry.max_attempts = 10;
        })
        .await;
        app.lms.with(|s| s.script.push_back(Reply::Slow(Duration::from_secs(5))));
        let order = shopify_order(9102, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

        let view = app.wait_for_order("9102", SHOP, "enrolled").await;

        let attempts = app.store.attempts(view.items[0].id).await.unwrap();
        let (last, before) = attempts.split_last().expect("attempts recorded");
        assert_eq!((last.http_status, last.outcome.as_str()), (Some(200), "enrolled"));
        // A loaded machine may be slow on a later attempt too: each is a retry.
        assert!(before.iter().all(|a| a.outcome == "retry"), "{attempts:#?}");
        let first = &attempts[0];
        assert_eq!((first.http_status, first.outcome.as_str()), (None, "retry"), "{attempts:#?}");
        assert_eq!(first.detail, "the LMS did not answer in time");
        assert!(first.duration_ms >= 1000, "given up after {} ms", first.duration_ms);
        assert!(app.lms.calls().len() >= 2);
    }

    async fn an_lms_closing_the_connection_mid_answer_is_retried_and_never_taken_for_an_enrollment(db: Db) {
        let lms = FakeLms::start().await;
        let front = CuttingFront::start(&lms, 2).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(db, &lms, &dir).await;
        config.lms.base_url = front.uri().parse().unwrap();
        config.retry.max_attempts = 10;
        let app = spawn_with_config(config, lms, dir).await;
        let order = shopify_order(9103, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

        let view = app.wait_for_order("9103", SHOP, "enrolled").await;

        assert_eq!(front.cuts_left(), 0, "both answers were cut off");
        let attempts = app.store.attempts(view.items[0].id).await.unwrap();
        let outcomes: Vec<_> = attempts.iter().map(|a| (a.http_status, a.outcome.as_str())).collect();
        assert_eq!(outcomes, vec![(None, "retry"), (None, "retry"), (Some(200), "enrolled")]);
        for cut in &attempts[..2] {
            assert!(cut.detail.starts_with("LMS request failed"), "{:?}", cut.detail);
        }
        assert_eq!(app.lms.calls().len(), 1, "only the whole answer came from the LMS");
        assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    }
}

/// A front on raw TCP before the fake LMS: it cuts off its answers to the
/// next bulk enrollment requests (the status line, the headers and a few bytes
/// of a longer body, then the connection closes) and passes the rest through,
/// one request per connection.
struct CuttingFront {
    address: SocketAddr,
    cuts_left: Arc<AtomicUsize>,
}

impl CuttingFront {
    async fn start(lms: &FakeLms, cuts: usize) -> CuttingFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let upstream = *lms.server.address();
        let cuts_left = Arc::new(AtomicUsize::new(cuts));
        let left = cuts_left.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(pass_or_cut(client, upstream, left.clone()));
            }
        });
        CuttingFront { address, cuts_left }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    fn cuts_left(&self) -> usize {
        self.cuts_left.load(Ordering::SeqCst)
    }
}

async fn pass_or_cut(mut client: TcpStream, upstream: SocketAddr, cuts_left: Arc<AtomicUsize>) {
    let Some((head, body)) = read_request(&mut client).await else {
        return;
    };
    let bulk_enroll = head.starts_with("POST /api/bulk_enroll/");
    if bulk_enroll
        && cuts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        let cut = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"action\": \"enroll\", \"courses\": {";
        let _ = client.write_all(cut.as_bytes()).await;
        return; // Dropped: the connection closes in the middle of the body.
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // One request per connection, so that every request passes this front's judgement.
    let (line, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
    let request = format!("{line}\r\nConnection: close\r\n{rest}");
    if server.write_all(request.as_bytes()).await.is_ok() && server.write_all(&body).await.is_ok() {
        let _ = tokio::io::copy(&mut server, &mut client).await;
    }
}

/// One HTTP/1.1 request: its head (through the blank line) and its body.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}
