//! A `CONNECT` tunnel through an HTTP proxy (RFC 9110 section 9.3.6): ask
//! for the target's authority, read the proxy's answer head, and on 2xx
//! the connection is the target's from the next byte on. Anything else is
//! an error that names the proxy, the target and the proxy's status.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Transport;
use crate::{
    error::{Error, ErrorKind},
    phase::Phase,
    route::ProxyHop,
};

/// The most a proxy's answer head may take.
const MAX_HEAD: usize = 16 * 1024;

/// Opens the tunnel to `authority` over `io`, a connection to `hop`.
pub(super) async fn connect(
    mut io: Transport,
    hop: &ProxyHop,
    authority: &str,
) -> Result<Transport, Error> {
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(c) = &hop.credentials {
        req.extend_from_slice(b"Proxy-Authorization: ");
        req.extend_from_slice(c.basic.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let failed = |what: String| {
        Error::new(
            ErrorKind::Proxy,
            format!("the proxy {} {what} (CONNECT to {authority})", hop.shown),
        )
        .with_phase(Phase::ProxyConnect)
    };
    let io_failed = |e: std::io::Error| failed("failed".into()).with_source(e);
    io.write_all(&req).await.map_err(io_failed)?;
    io.flush().await.map_err(io_failed)?;
    let mut buf = Vec::with_capacity(512);
    loop {
        // Byte by byte would be safe against over-reading; a proxy sends
        // nothing after its answer until we speak, so a chunk is too.
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await.map_err(io_failed)?;
        if n == 0 {
            return Err(failed("closed the connection without answering".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let code = res.code.unwrap_or(0);
                if (200..300).contains(&code) {
                    if len < buf.len() {
                        return Err(failed(
                            "sent bytes after its CONNECT answer, before the target spoke".into(),
                        ));
                    }
                    return Ok(io);
                }
                let reason = res.reason.unwrap_or("");
                let hint = match code {
                    // Some proxies (tinyproxy) say 401 to a CONNECT.
                    401 | 407 if hop.credentials.is_some() => ": it did not accept the credentials",
                    401 | 407 => ": it wants credentials (user:password@ in the proxy URL)",
                    _ => "",
                };
                return Err(failed(format!("answered {code} {reason}{hint}")));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(failed(format!("sent an answer head over {MAX_HEAD} bytes")));
            }
            Err(e) => return Err(failed(format!("sent a malformed answer ({e})"))),
        }
    }
}
