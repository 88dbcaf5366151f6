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
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod generate;

use crate::helpers::{
    fresh_database, sign, wait_until, Db, COURSE_A, SHOP, SHOPIFY_KEY, WOO_SECRET, WOO_SOURCE,
};
use crate::lms::FakeLms;
use crate::service::*;
use generate::{framed, generate, valid_order, PATHS};

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
