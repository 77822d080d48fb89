//! Serving one listener: hyper's HTTP/1 connection with a header-read
//! timeout, a cap on the connections served at once, and a shutdown that
//! waits for requests in flight only so long; over TLS when configured
//! (the handshake within its own header-read timeout).
//!
//! `axum::serve` has none of these knobs (it builds its connections
//! without a timer, so hyper's header-read timeout never runs, and it
//! accepts without bound), hence this small accept loop in its place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::ServeLimits;

/// Serves `app` on `listener` until `stop` turns `true`, then stops
/// accepting, lets each connection finish the request it is on (keep-alive
/// off) for at most `limits.shutdown_timeout`, and closes what remains.
///
/// Every connection holds one of `permits` (shared by all listeners, sized
/// `limits.max_connections`) while it is open: when none is free the loop
/// stops accepting, and new connections wait in the kernel's accept queue
/// until one closes. A connection whose request head is not complete
/// `limits.header_read_timeout` after the server started reading it is
/// closed by hyper. Each request carries the peer address as
/// `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.
///
/// With `tls`, each connection first completes a TLS handshake, within
/// `limits.header_read_timeout` too (a client that connects and never
/// says hello is closed like one that never sends its head); a failed
/// handshake (a plain-HTTP request, an unknown protocol) closes the
/// connection without any HTTP answer.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    // Tells every connection of this listener to finish its request and close.
    let (drain, draining) = watch::channel(false);
    loop {
        // Reap finished connections so the set stays as big as what is open.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let mut draining = draining.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let Some(acceptor) = tls else {
                serve_connection(tcp, service, limits, peer, draining).await;
                return;
            };
            let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
            let stream = tokio::select! {
                result = handshake => match result {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        // Scanners and plain-HTTP clients: debug, not noise.
                        tracing::debug!(peer = %peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "closed a connection that did not finish its TLS handshake in time");
                        return;
                    }
                },
                () = stopped(&mut draining) => return,
            };
            serve_connection(stream, service, limits, peer, draining).await;
        });
    }
    drop(listener);
    let _ = drain.send(true);
    let open = connections.len();
    if open == 0 {
        return;
    }
    tracing::debug!(connections = open, "waiting for requests in flight");
    let finished = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            connections = connections.len(),
            timeout_secs = limits.shutdown_timeout.as_secs(),
            "LEAD_SHUTDOWN_TIMEOUT_SECS reached: closing the connections still open"
        );
        connections.shutdown().await;
    }
}

/// Serves HTTP/1 on one connection (`io`: TCP, or TLS over it) with the
/// header-read timeout; once `draining` turns `true`, finishes the
/// request in flight and closes.
async fn serve_connection<I, S>(
    io: I,
    service: S,
    limits: ServeLimits,
    peer: SocketAddr,
    mut draining: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            log_connection_end(peer, result);
            return;
        }
        () = stopped(&mut draining) => {}
    }
    connection.as_mut().graceful_shutdown();
    log_connection_end(peer, connection.await);
}

/// Waits until `stop` turns `true` (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Logs why a connection ended, when it was not a plain close.
fn log_connection_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        if err.is_timeout() {
            tracing::debug!(peer = %peer, "closed a connection that did not send its request head in time");
        } else {
            tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
        }
    }
}

/// After a failed accept: a connection that went away before it was
/// accepted costs nothing; anything else (out of file descriptors) is
/// logged, and the loop pauses a moment so it does not spin.
async fn accept_failed(err: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
