//! A lean HTTP/1.1 client on a thread of its own: intake runs.

use std::time::{Duration, Instant};

use crate::payloads::{check_answer, Order};
use crate::report::IntakeReport;
use crate::server::Server;

/// `orders` distinct orders from `concurrency` connections, each sending its
/// next as soon as answered. The orders are built and signed before the clock
/// starts, and the connections are driven by one thread of their own, so the
/// load generator takes as little of the machine as it can.
pub async fn intake(
    server: &Server,
    orders: usize,
    concurrency: usize,
    warm_up: bool,
) -> IntakeReport {
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    intake_run(server, &run, 0, orders, concurrency, warm_up).await
}

/// As [`intake`], for orders `first..first + orders` of run `run`: several
/// runs into one database take distinct orders.
pub async fn intake_run(
    server: &Server,
    run: &str,
    first: usize,
    orders: usize,
    concurrency: usize,
    warm_up: bool,
) -> IntakeReport {
    let mut prepared: Vec<Order> = (first..first + orders)
        .map(|n| Order::new(n, run))
        .collect();
    if warm_up {
        // Connections and the server's caches, before the clock starts.
        let warm: Vec<Order> = (0..concurrency.min(16))
            .map(|n| Order::new(first + 1_000_000 + n, run))
            .collect();
        prepared.splice(0..0, warm);
    }
    let warm = if warm_up { concurrency.min(16) } else { 0 };
    let addr = server.base.trim_start_matches("http://").to_owned();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, drive(addr, prepared, warm, concurrency))
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap()
}

/// Sends the first `warm` orders one by one, then the rest over `concurrency` connections.
pub async fn drive(
    addr: String,
    orders: Vec<Order>,
    warm: usize,
    concurrency: usize,
) -> IntakeReport {
    let orders = std::rc::Rc::new(orders);
    let mut connections = Vec::new();
    for _ in 0..concurrency {
        connections.push(connect(&addr).await);
    }
    for (i, order) in orders[..warm].iter().enumerate() {
        let _ = send(&mut connections[i % concurrency], order, &addr).await;
    }
    let next = std::rc::Rc::new(std::cell::Cell::new(warm));
    let start = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let (orders, next, addr) = (orders.clone(), next.clone(), addr.clone());
            tokio::task::spawn_local(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let n = next.get();
                    if n >= orders.len() {
                        break;
                    }
                    next.set(n + 1);
                    match send(&mut connection, &orders[n], &addr).await {
                        Ok(latency) => latencies.push(latency),
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let elapsed = start.elapsed();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for result in results {
        let (l, e) = result.unwrap();
        latencies.extend(l);
        errors.extend(e);
    }
    IntakeReport {
        latencies,
        errors,
        elapsed,
    }
}

pub type HttpConnection =
    hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

pub async fn connect(addr: &str) -> HttpConnection {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::task::spawn_local(connection);
    sender
}

pub async fn send(
    connection: &mut HttpConnection,
    order: &Order,
    addr: &str,
) -> Result<Duration, String> {
    use http_body_util::BodyExt;
    let start = Instant::now();
    if connection.ready().await.is_err() {
        // The server closed it: open another, as a client's pool would.
        *connection = connect(addr).await;
    }
    let response = connection
        .send_request(order.request(addr))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let elapsed = start.elapsed();
    check_answer(status, &body).map(|()| elapsed)
}
