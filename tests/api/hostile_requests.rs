//! The real binary under a storm of generated hostile requests over raw TCP:
//! mutated and random bodies, bad headers and framing, pipelining and slow
//! clients. No answer is a 5xx, the process survives within its memory bound,
//! every complete request is stored with its verdict, and the valid signed
//! orders mixed in are all enrolled.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use edx_webhooks::store::Store;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    fresh_database, shopify_order, sign, wait_until, Db, COURSE_A, SHOP, SHOPIFY_KEY, WOO_SECRET,
    WOO_SOURCE,
};
use crate::lms::FakeLms;
use crate::service::*;

/// Requests generated, in total.
const REQUESTS: usize = 3_000;
/// Every how many-th request is a valid signed order that must end enrolled.
const VALID_EVERY: usize = 25;
/// Connections the storm keeps busy at once.
const CONCURRENCY: usize = 16;
/// The server's peak resident memory may not exceed this (README, "Reliability").
const RSS_BOUND_KIB: u64 = 96 * 1024;
const MAX_BODY: usize = 64 * 1024;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// No exchange waits longer than this for its answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(15);

/// One generated request: its bytes, and whether it is complete and
/// well-framed, so the service must answer it and store it.
struct Case {
    bytes: Vec<u8>,
    complete: bool,
    /// The learner of a valid signed order, who must end enrolled.
    learner: Option<String>,
}

const PATHS: [&str; 5] = [
    "/webhooks/shopify",
    "/webhooks/shopify/order/create",
    "/webhooks/woocommerce",
    "/webhooks/woocommerce/order/create",
    "/webhooks/woocommerce/order/update",
];

fn valid_order(n: usize) -> (Vec<u8>, String) {
    let learner = format!("storm-{n}@example.org");
    let order = shopify_order(
        900_000 + n as u64,
        &[(1, COURSE_A, Some(&learner))],
        Some("buyer@example.org"),
        "paid",
    );
    (order.to_string().into_bytes(), learner)
}

/// A request with `headers` and a body framed by Content-Length.
fn framed(path: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A body: random bytes, or a valid order mutated one of many ways.
fn hostile_body(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let (mut body, _) = valid_order(n);
    match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..2_000)).map(|_| rng.gen()).collect(),
        1 => {
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..body.len());
                body[at] ^= 1 << rng.gen_range(0..8);
            }
            body
        }
        2 => {
            body.truncate(rng.gen_range(0..body.len()));
            body
        }
        3 => {
            let mut duplicated = br#"{"id":1,"line_items":7,"id":"x","#.to_vec();
            duplicated.extend_from_slice(&body[1..]);
            duplicated
        }
        4 => {
            let depth = if rng.gen_bool(0.5) { 10_000 } else { 200 };
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            format!(r#"{{"id":5,"line_items":[{{"id":1,"sku":{nested}}}],"x":{nested}}}"#)
                .into_bytes()
        }
        5 => {
            let huge = [
                "1e999999",
                "-1e400",
                &"9".repeat(400),
                "18446744073709551616",
                "-0",
            ];
            let number = huge[rng.gen_range(0..huge.len())];
            format!(r#"{{"id":{number},"line_items":[{{"id":{number},"sku":{number}}}]}}"#)
                .into_bytes()
        }
        6 => {
            let at = rng.gen_range(0..body.len());
            body.splice(at..at, [0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            body
        }
        7 => String::from_utf8(body)
            .unwrap()
            .replace("A course", "Курс ☃ 𝄞 \u{202e}")
            .replace("example.org", "пример.рф")
            .into_bytes(),
        _ => body,
    }
}

/// Headers for a delivery of `body`: mostly right, often wrong.
fn hostile_headers(rng: &mut StdRng, path: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let woo = path.contains("woocommerce");
    let (sig_name, source_name, source, key) = if woo {
        (
            "x-wc-webhook-signature",
            "x-wc-webhook-source",
            WOO_SOURCE,
            WOO_SECRET,
        )
    } else {
        (
            "x-shopify-hmac-sha256",
            "x-shopify-shop-domain",
            SHOP,
            SHOPIFY_KEY,
        )
    };
    let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
    headers.push((sig_name.into(), sign(key, body).into_bytes()));
    headers.push((source_name.into(), source.as_bytes().to_vec()));
    match rng.gen_range(0..10) {
        0 => headers[0].1 = b"text/plain; charset=\xff".to_vec(),
        1 => headers.push((sig_name.into(), b"AAAA".to_vec())),
        2 => headers[1].1 = Vec::new(),
        3 => headers.push(("x-huge".into(), vec![b'h'; 6_000])),
        4 => headers[2].1 = "ünïcödé.myshopify.com".as_bytes().to_vec(),
        5 => {
            headers.remove(1);
        }
        6 => headers[1].1 = b"not base64 !!".to_vec(),
        7 => headers.push(("x-shopify-topic".into(), b"orders/\xe9\x80".to_vec())),
        8 => headers[0].1 = b"application/x-www-form-urlencoded".to_vec(),
        _ => {}
    }
    headers
}

/// Requests whose framing is broken or incomplete: the server may refuse
/// them at the HTTP level or never see them whole.
fn broken_framing(rng: &mut StdRng, path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n");
    let mut bytes = head.into_bytes();
    match rng.gen_range(0..6) {
        // Content-Length twice, disagreeing.
        0 => bytes.extend_from_slice(
            format!(
                "content-length: {}\r\ncontent-length: 3\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        ),
        // A chunked body cut off mid-chunk.
        1 => bytes.extend_from_slice(
            format!(
                "transfer-encoding: chunked\r\n\r\n{:x}\r\n",
                body.len() + 50
            )
            .as_bytes(),
        ),
        // More promised than sent.
        2 => bytes
            .extend_from_slice(format!("content-length: {}\r\n\r\n", body.len() * 2).as_bytes()),
        // A header name that is no token, and a bare line feed.
        3 => bytes.extend_from_slice(b"bad header\xff: x\n\r\n"),
        // A Content-Length that is no number.
        4 => bytes.extend_from_slice(b"content-length: 12abc\r\n\r\n"),
        // A body over the limit.
        _ => {
            bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", MAX_BODY * 2).as_bytes());
            bytes.extend_from_slice(&vec![b' '; MAX_BODY * 2]);
            return bytes;
        }
    }
    bytes.extend_from_slice(body);
    bytes
}

/// A well-framed chunked request.
fn chunked(path: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ntransfer-encoding: chunked\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: ").as_bytes());
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    for chunk in body.chunks(100) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

fn generate(seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..REQUESTS)
        .map(|n| {
            if n % VALID_EVERY == 0 {
                let (body, learner) = valid_order(n);
                let headers = vec![
                    ("content-type".to_owned(), b"application/json".to_vec()),
                    (
                        "x-shopify-hmac-sha256".into(),
                        sign(SHOPIFY_KEY, &body).into_bytes(),
                    ),
                    ("x-shopify-shop-domain".into(), SHOP.as_bytes().to_vec()),
                    ("x-shopify-topic".into(), b"orders/create".to_vec()),
                ];
                return Case {
                    bytes: framed(PATHS[0], &headers, &body),
                    complete: true,
                    learner: Some(learner),
                };
            }
            let path = PATHS[rng.gen_range(0..PATHS.len())];
            let body = hostile_body(&mut rng, n);
            let headers = hostile_headers(&mut rng, path, &body);
            let (bytes, complete) = match rng.gen_range(0..10) {
                0 => (broken_framing(&mut rng, path, &body), false),
                1 => (chunked(path, &headers, &body), true),
                _ => (framed(path, &headers, &body), true),
            };
            Case {
                bytes,
                complete,
                learner: None,
            }
        })
        .collect()
}

/// The status codes of every answer on a connection to which `bytes` were
/// written, read until the server closes it (or the deadline passes).
/// With `half_close` the client closes its writing side after the request,
/// as one that is gone does; the server may then drop the connection unanswered.
async fn talk(address: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u16> {
    let talk = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        // The server may answer and close before reading everything (413, 400).
        let _ = stream.write_all(bytes).await;
        if half_close {
            let _ = stream.shutdown().await;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        Some(statuses(&answer))
    };
    tokio::time::timeout(ANSWER_DEADLINE, talk)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The status of each answer in `answer` (a body may end right before the
/// next status line, with no line break).
fn statuses(answer: &[u8]) -> Vec<u16> {
    answer
        .windows(13)
        .filter(|w| w.starts_with(b"HTTP/1.1 ") && w[12] == b' ')
        .filter_map(|w| std::str::from_utf8(&w[9..12]).ok()?.parse().ok())
        .collect()
}

/// A client that sends its headers one byte every 100 ms: the server must
/// close it after the header timeout. Returns how long that took.
async fn slow_client(address: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.ok()?;
    let request = b"POST /webhooks/shopify HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ".repeat(20);
    for byte in request {
        if stream.write_all(&[byte]).await.is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Ok(Ok(_)) => return Some(started.elapsed()),
            Err(_) => {}
        }
        if started.elapsed() > HEADER_TIMEOUT * 5 {
            return None;
        }
    }
    None
}

fn peak_rss_kib(pid: i32) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_hostile_requests_gets_no_5xx_loses_nothing_and_stays_within_its_memory() {
    let lms = FakeLms::start().await;
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, &dir).await;
    let mut env = service_env(&lms, &url);
    for (name, value) in [
        ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
        ("EDX_WEBHOOKS_MAX_BODY", format!("{MAX_BODY}")),
        ("EDX_WEBHOOKS_HEADER_TIMEOUT", "2s".to_owned()),
    ] {
        env = with_setting(env, name, &value);
    }
    let service = Service::start(dir.path(), &env).await;
    let address = service.address();
    let started = Instant::now();
    let (rss_before, _) = peak_rss_kib(service.pid());

    let cases = generate(0x5eed_0009);
    let learners: Vec<String> = cases.iter().filter_map(|c| c.learner.clone()).collect();
    let sent_complete = cases.iter().filter(|c| c.complete).count();

    // Slow clients start first and hold their connections while the storm runs.
    let slow: Vec<_> = (0..4).map(|_| tokio::spawn(slow_client(address))).collect();

    let answers: Vec<(bool, Vec<u16>)> = futures::stream::iter(cases.iter())
        .map(|case| async move {
            (
                case.complete,
                talk(address, &case.bytes, !case.complete).await,
            )
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    // Pipelined: five complete requests written at once on one connection.
    let (body, learner) = valid_order(REQUESTS + 1);
    let headers = vec![
        ("content-type".to_owned(), b"application/json".to_vec()),
        (
            "x-shopify-hmac-sha256".into(),
            sign(SHOPIFY_KEY, &body).into_bytes(),
        ),
        ("x-shopify-shop-domain".into(), SHOP.as_bytes().to_vec()),
    ];
    let mut pipelined = Vec::new();
    for i in 0..5 {
        let one = framed(PATHS[1], &headers, &body);
        let one = if i < 4 {
            String::from_utf8(one)
                .unwrap()
                .replacen("connection: close", "connection: keep-alive", 1)
                .into_bytes()
        } else {
            one
        };
        pipelined.extend(one);
    }
    let pipelined_answers = talk(address, &pipelined, false).await;
    assert_eq!(
        pipelined_answers,
        vec![200; 5],
        "every pipelined request answered in turn"
    );

    // Request smuggling's shape: both Content-Length and Transfer-Encoding.
    let smuggled = b"POST /webhooks/shopify HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(
        talk(address, smuggled, false).await,
        vec![400],
        "CL and TE together"
    );

    for client in slow {
        let closed_after = client.await.unwrap().expect("a slow client is cut off");
        assert!(
            closed_after < HEADER_TIMEOUT * 4,
            "slow client held for {closed_after:?}"
        );
    }

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut unanswered_complete = 0;
    for (complete, statuses) in &answers {
        for status in statuses {
            *by_status.entry(*status).or_default() += 1;
        }
        if *complete && statuses.len() != 1 {
            unanswered_complete += 1;
        }
    }
    let server_errors: usize = by_status.range(500..).map(|(_, n)| n).sum();
    let (peak, now) = peak_rss_kib(service.pid());
    println!(
        "hostile storm: {} requests ({sent_complete} complete) in {:?}; answers {by_status:?}; \
         RSS before {rss_before} KiB, peak {peak} KiB, after {now} KiB",
        answers.len() + 7,
        started.elapsed()
    );
    assert_eq!(server_errors, 0, "5xx answers: {by_status:?}");
    assert_eq!(
        unanswered_complete, 0,
        "complete requests without exactly one answer"
    );
    assert!(
        peak <= RSS_BOUND_KIB,
        "peak RSS {peak} KiB over the bound of {RSS_BOUND_KIB} KiB"
    );

    // Every complete request is stored with the verdict it was answered with.
    let store = Store::connect(&url).await.unwrap();
    let stored = store.requests(1_000_000).await.unwrap();
    let mut stored_by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for request in &stored {
        *stored_by_status.entry(request.http_status).or_default() += 1;
    }
    let mut complete_by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, statuses) in answers.iter().filter(|(complete, _)| *complete) {
        for status in statuses {
            *complete_by_status.entry(*status).or_default() += 1;
        }
    }
    for (status, answered) in &complete_by_status {
        let kept = stored_by_status.get(status).copied().unwrap_or(0);
        assert!(
            kept >= *answered,
            "{answered} answered {status}, {kept} stored: {stored_by_status:?}"
        );
    }
    assert!(
        stored.len() <= answers.len() + 6,
        "more stored ({}) than requests sent",
        stored.len()
    );

    // The valid orders in the storm, and the pipelined one, all end enrolled.
    let enrolled = wait_until(Duration::from_secs(30), || {
        let all = learners
            .iter()
            .chain([&learner])
            .all(|l| lms.is_enrolled(COURSE_A, l));
        async move { all }
    })
    .await;
    assert!(enrolled, "not every valid order of the storm was enrolled");
    assert!(
        service.pid() > 0 && peak_rss_kib(service.pid()).1 > 0,
        "the service survived"
    );
}
