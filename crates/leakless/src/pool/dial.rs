//! Dialing for a slot: the connect layer opens the connection, then it is
//! registered here. HTTP/1.1 becomes the slot's busy lease; HTTP/2 becomes
//! a shared entry whose first stream goes to the dialer, with the task that
//! drives the connection and takes the entry out when it ends.

use std::sync::Arc;

use super::{
    Shared,
    host::Control,
    lease::{Lease, Slot},
    streams::H2Stream,
};
use crate::{
    config::TlsInfo,
    connect::{DialReport, DialTimes, Ends, Opened, Protocol, Transport},
    error::Error,
    http1::H1Conn,
    http2::{self, Handshaken, Keepalive},
    route::Route,
    stats::CloseReason,
    trace::Tracer,
};

/// A finished dial: an HTTP/1.1 connection of our own, or the first stream
/// of a new shared HTTP/2 connection.
#[derive(Debug)]
pub(crate) enum Dialed {
    H1(Lease),
    /// Boxed as `Checkout::Stream` is.
    H2(Box<H2Stream>),
}

/// Dials for `slot`; on failure the slot is released with the reason.
pub(crate) async fn dial(
    mut slot: Slot,
    route: &Route,
    tracer: &mut Tracer,
) -> Result<Dialed, Error> {
    let mut report = DialReport::default();
    let opened = open(&slot, route, tracer, &mut report).await;
    if report.lost_race > 0 {
        slot.shared.lost_race(route, report.lost_race);
    }
    match opened {
        Ok((Speaks::H1(io), times, tls_info)) => {
            let mut lease = slot.connected(H1Conn::new(io), times);
            lease.tls_info = tls_info;
            Ok(Dialed::H1(lease))
        }
        Ok((Speaks::H2(conn, ends), times, tls_info)) => {
            let Handshaken { send, conn, pings } = *conn;
            let shared = slot.shared.clone();
            let (stream, id, control) = shared.add_h2(slot, send, times, tls_info, ends);
            spawn_driver(shared, route.clone(), id, control, conn, pings);
            Ok(Dialed::H2(stream))
        }
        Err(e) => {
            slot.fail(if e.is_timeout() {
                CloseReason::Timeout
            } else {
                CloseReason::Error
            });
            let e = e.with_host(route.authority());
            tracer.dial_failed(&e);
            Err(e)
        }
    }
}

enum Speaks {
    H1(Transport),
    /// Boxed: the connection state is large and lives only until spawned.
    H2(Box<Handshaken>, Ends),
}

/// Connects, then handshakes HTTP/2 when that is what was chosen.
async fn open(
    slot: &Slot,
    route: &Route,
    tracer: &mut Tracer,
    report: &mut DialReport,
) -> Result<(Speaks, DialTimes, Option<TlsInfo>), Error> {
    let Opened {
        io,
        protocol,
        times,
        tls_info,
    } = slot.shared.connector.connect(route, tracer, report).await?;
    match protocol {
        Protocol::Http1 => Ok((Speaks::H1(io), times, tls_info)),
        Protocol::Http2 => {
            // Read once for all the connection's streams: a response's
            // remote_addr and an observer's GotConn.
            let ends = io.ends();
            let conn = http2::handshake(io, slot.config()).await?;
            Ok((Speaks::H2(Box::new(conn), ends), times, tls_info))
        }
    }
}

/// Runs the connection until it ends; then its entry leaves the pool.
fn spawn_driver(
    shared: Arc<Shared>,
    route: Route,
    id: u64,
    control: Arc<Control>,
    conn: h2::client::Connection<Transport, bytes::Bytes>,
    pings: h2::PingPong,
) {
    tokio::spawn(async move {
        let keep = Keepalive {
            interval: shared.config.http2_keep_alive_interval,
            timeout: shared.config.http2_keep_alive_timeout,
            close: &control.close,
            check: &control.check,
        };
        let reason = http2::drive(conn, pings, keep, &route).await;
        shared.h2_gone(&route, id, reason);
    });
}
