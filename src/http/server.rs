//! The HTTP/1 server: what one client may hold of it is bounded. Headers
//! must arrive within the header timeout (idle keep-alive connections too),
//! at most `max_connections` are open at once (more wait in the kernel's
//! backlog), each connection's read buffer is bounded, and a request that
//! carries both `Content-Length` and `Transfer-Encoding` is refused.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::framing::{AmbiguousLength, FramingWatch};
use crate::config::HttpLimits;

/// The most a connection's read buffer grows to: a request head larger than
/// this is answered 431.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// Headers in one request.
const MAX_HEADERS: usize = 100;

/// Serves `app` on `listener` until `stop`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_READ_BUFFER)
        .max_headers(MAX_HEADERS);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (watched, framing) = FramingWatch::new(stream);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let app = app.clone();
            request.extensions_mut().insert(ConnectInfo(peer));
            let ambiguous = framing.is_ambiguous(framing.next_request());
            async move {
                if ambiguous {
                    if !request.uri().path().starts_with("/webhooks/") {
                        return Ok::<_, Infallible>(refuse_ambiguous());
                    }
                    // Intake stores it with the reason.
                    request.extensions_mut().insert(AmbiguousLength);
                }
                app.oneshot(request.map(Body::new)).await
            }
        });
        let connection = http.serve_connection(TokioIo::new(watched), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Hands memory freed after a burst back to the system: glibc keeps freed
/// heap pages otherwise, and the process would stay at its peak for good.
pub async fn give_back_memory(stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory; callable at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn refuse_ambiguous() -> Response<Body> {
    (StatusCode::BAD_REQUEST, AmbiguousLength::REASON).into_response()
}
