//! An HTTP/2 connection's life: the handshake, then the loop that drives
//! it, pings it every `http2_keep_alive_interval` (or at once when asked),
//! and ends when the peer closes, errors, or stops answering pings.

use std::{fmt, time::Duration};

use bytes::Bytes;
use h2::{
    PingPong, Reason,
    client::{Connection, SendRequest},
};
use tokio::sync::Notify;

use crate::{
    attempt::MAX_HEAD_BYTES,
    config::Config,
    connect::Transport,
    error::{Error, ErrorKind},
    phase::Phase,
    stats::CloseReason,
};

/// A connection after its handshake: the handle that opens streams, the
/// connection itself (to be driven), and its pings.
pub(crate) struct Handshaken {
    pub send: SendRequest<Bytes>,
    pub conn: Connection<Transport, Bytes>,
    pub pings: PingPong,
}

/// Handshakes within `cfg.connect_timeout` and waits one ping round trip,
/// so the server's SETTINGS (its stream limit above all) are known before
/// any stream is counted.
pub(crate) async fn handshake(io: Transport, cfg: &Config) -> Result<Handshaken, Error> {
    let limit = cfg.connect_timeout;
    let setup = async {
        let mut builder = h2::client::Builder::new();
        builder
            .enable_push(false)
            // h2 sends a WINDOW_UPDATE once half a window is consumed: one
            // per 512 KiB of a stream at the default. Small bodies never
            // reach that point (per request, the window costs only the
            // `release_capacity` call).
            .initial_window_size(cfg.http2_initial_stream_window_size)
            .initial_connection_window_size(cfg.http2_initial_connection_window_size)
            // The decoder's table stays at the default 4 KiB: a server
            // that refers back to it sends fewer bytes. nginx never does,
            // yet a table of 0 saved nothing against it: it still sends
            // each field as a literal to index, decoded all the same.
            // The HTTP/1.1 engine's bound, not h2's 16 MiB. Past it h2
            // resets the stream; past four times it, or in more
            // CONTINUATION frames than it needs, h2 ends the connection.
            .max_header_list_size(MAX_HEAD_BYTES as u32);
        if let Some(size) = cfg.http2_max_frame_size {
            // In range: `ClientBuilder::build` checked (h2 panics otherwise).
            builder.max_frame_size(size);
        }
        let (send, mut conn) = builder.handshake::<_, Bytes>(io).await?;
        let mut pings = conn.ping_pong().expect("taken once, here");
        tokio::select! {
            res = &mut conn => {
                res?;
                return Err(h2::Error::from(Reason::PROTOCOL_ERROR));
            }
            pong = pings.ping(h2::Ping::opaque()) => { pong?; }
        }
        Ok(Handshaken { send, conn, pings })
    };
    match tokio::time::timeout(limit, setup).await {
        Ok(Ok(parts)) => Ok(parts),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Connect, "HTTP/2 handshake failed")
            .with_source(e)
            .with_phase(Phase::Connect)),
        Err(_) => Err(Error::timeout(Phase::Connect, limit)),
    }
}

/// How a connection is kept alive, and how its owner steers it.
pub(crate) struct Keepalive<'a> {
    /// Ping this often; `None` never (unless asked).
    pub interval: Option<Duration>,
    /// A ping unanswered this long ends the connection.
    pub timeout: Duration,
    /// End the connection now.
    pub close: &'a Notify,
    /// Ping now: a request timed out on it, it may be dead.
    pub check: &'a Notify,
}

/// Drives the connection until it ends and says why. The caller spawns it
/// and takes the connection out of service when it returns.
pub(crate) async fn drive(
    mut conn: Connection<Transport, Bytes>,
    mut pings: PingPong,
    keep: Keepalive<'_>,
    host: impl fmt::Display,
) -> CloseReason {
    let Keepalive {
        interval,
        timeout: ping_limit,
        close,
        check,
    } = keep;
    // The select! below is polled each time the connection is: its other
    // branches (two `Notified`, the tick's `Sleep`) are made once per ping
    // and, registered, cost a few instructions per poll; callgrind puts the
    // loop at about 20 instructions per request outside h2's own poll, so
    // it stays this simple.
    loop {
        let tick = async {
            match interval {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            res = &mut conn => break if res.is_ok() { CloseReason::ServerClosed } else { CloseReason::Error },
            _ = close.notified() => break CloseReason::ClientDropped,
            _ = tick => {}
            _ = check.notified() => {}
        }
        // Ping while still driving the connection: the pong arrives through it.
        let ping = tokio::time::timeout(ping_limit, pings.ping(h2::Ping::opaque()));
        tokio::select! {
            res = &mut conn => break if res.is_ok() { CloseReason::ServerClosed } else { CloseReason::Error },
            pong = ping => match pong {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break CloseReason::Error,
                Err(_) => {
                    tracing::debug!(%host, "HTTP/2 ping unanswered for {ping_limit:?}: closing");
                    break CloseReason::Timeout;
                }
            },
        }
    }
}
