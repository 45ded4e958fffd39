//! Accepting connections, so that slow or stalled clients cannot hold the server: a deadline
//! on request headers (which is also how long an idle keep-alive connection stays open), a
//! budget of waiting time for each request body, and a cap on
//! the open connections of one client address (trusted proxies are not counted). On shutdown
//! every connection stops taking new requests and finishes the ones in flight.
//!
//! axum's own `serve` cannot set hyper's header read timeout, hence this loop over hyper's
//! HTTP/1 connection builder (HTTP/1 only, as before). Handlers still see the peer address as
//! `ConnectInfo<SocketAddr>`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower_service::Service;

/// Deadlines and caps of incoming connections.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Most open connections per client address; 0: no cap.
    pub per_ip: usize,
    /// Addresses whose connections are not counted (reverse proxies carry many clients).
    pub exempt: Vec<IpNet>,
}

/// Open connections per client address, shared by every listener of one server.
pub struct PerIp {
    cap: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounts itself when dropped.
pub struct ConnSlot {
    table: Arc<PerIp>,
    ip: Option<IpAddr>,
}

impl PerIp {
    pub fn new(cap: usize, exempt: Vec<IpNet>) -> Arc<PerIp> {
        Arc::new(PerIp {
            cap,
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it has `cap` open already.
    pub fn enter(self: &Arc<PerIp>, ip: IpAddr) -> Option<ConnSlot> {
        let ip = ip.to_canonical();
        if self.cap == 0 || self.exempt.iter().any(|n| n.contains(&ip)) {
            return Some(ConnSlot {
                table: self.clone(),
                ip: None,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ConnSlot {
            table: self.clone(),
            ip: Some(ip),
        })
    }

    /// Open connections counted for `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// Serves `listeners` (each with its router) until `shutdown` completes, then lets every open
/// connection finish its in-flight requests and returns once all are closed. The caller bounds
/// that wait.
pub async fn serve(
    listeners: Vec<(TcpListener, Router)>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let per_ip = PerIp::new(limits.per_ip, limits.exempt.clone());
    let limits = Arc::new(limits);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` ends when the last one is gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut accepting = Vec::new();
    for (listener, router) in listeners {
        accepting.push(tokio::spawn(accept_loop(
            listener,
            router,
            limits.clone(),
            per_ip.clone(),
            stop_rx.clone(),
            alive_tx.clone(),
        )));
    }
    drop(alive_tx);
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in accepting {
        let _ = task.await;
    }
    let _ = alive_rx.recv().await;
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Arc<ConnLimits>,
    per_ip: Arc<PerIp>,
    mut stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = per_ip.enter(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "too many connections from one address; closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let limits = limits.clone();
        let mut stop = stop.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let body_timeout = limits.body_timeout;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let req = req.map(|body| with_deadline(body, body_timeout));
                let mut router = router.clone();
                router.call(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            let result = match done {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(client = %peer.ip(), error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(alive);
        });
    }
}

/// The body of a request, failing with [`BodyTimeout`] once the server has waited `budget` in
/// all for the client's bytes. Only waiting counts: time the handler spends between reads (a
/// CSV import hashing password cells while it streams) does not. Bodies known to be empty are
/// left alone (no timer).
fn with_deadline(body: Incoming, budget: Duration) -> Body {
    if body.is_end_stream() || body.size_hint().exact() == Some(0) {
        return Body::new(body);
    }
    Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(budget)),
        budget,
        waited: Duration::ZERO,
        waiting_since: None,
    })
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

/// Whether `err` (or one of its sources) is a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    budget: Duration,
    /// Time spent waiting for the client in earlier reads.
    waited: Duration,
    /// When the current wait began, while a read is pending.
    waiting_since: Option<tokio::time::Instant>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this
                    .waiting_since
                    .get_or_insert_with(tokio::time::Instant::now);
                let deadline = since + this.budget.saturating_sub(this.waited);
                if this.sleep.deadline() != deadline {
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.budget).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_uncounted_when_closed() {
        let table = PerIp::new(2, vec!["10.0.0.0/8".parse().expect("net")]);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let one = table.enter(a).expect("first");
        let _two = table.enter(a).expect("second");
        assert!(table.enter(a).is_none(), "the third is refused");
        assert!(table.enter("192.0.2.2".parse().expect("ip")).is_some());
        drop(one);
        assert_eq!(table.open(a), 1);
        let _three = table.enter(a).expect("a closed connection frees its slot");
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let held: Vec<_> = (0..5).map(|_| table.enter(proxy)).collect();
        assert!(
            held.iter().all(Option::is_some),
            "trusted proxies are not counted"
        );
        // An IPv4-mapped IPv6 address is the same client as its IPv4 form.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert!(table.enter(mapped).is_none());
    }
}
