//! A GOAWAY says which requests the server never processed: the streams
//! above its last-stream-id (RFC 9113 §6.8). Those go again on a new
//! connection whatever their method; a stream at or below it may have been
//! processed, so a request that is not safe to repeat is not sent again
//! when the connection then ends without its response.
//!
//! The test server's h2 crate puts in a GOAWAY the last stream it received,
//! so the streams here are served by a small h2c server in raw frames: on
//! its first connection it waits for two requests (streams 1 and 3), says
//! GOAWAY with the last-stream-id the test chose, answers stream 1 and
//! closes; on later connections it answers every request.

use std::sync::{Arc, Mutex};

use leakless::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{h2_frames::*, *};

#[tokio::test]
async fn a_post_on_a_stream_above_the_goaways_last_stream_id_goes_again_on_a_new_connection() {
    let server = RawH2::start(1).await;
    let (first, second) = two_posts(&server).await;
    assert_eq!((first.unwrap(), second.unwrap()), (200, 200));
    // Stream 3 went unprocessed on the first connection, and was sent again
    // on a second, as its stream 1.
    assert_eq!(server.streams(), vec![(1, vec![1, 3]), (2, vec![1])]);
}

#[tokio::test]
async fn a_post_on_a_stream_at_the_goaways_last_stream_id_is_not_sent_again() {
    let server = RawH2::start(3).await;
    let (first, second) = two_posts(&server).await;
    let mut results = [first, second];
    results.sort_by_key(Result::is_ok);
    let [Err(e), Ok(200)] = &results else {
        panic!("one answered, one failed: {results:?}");
    };
    assert!(e.is_maybe_sent(), "{e:?}");
    assert_eq!(server.streams(), vec![(1, vec![1, 3])], "sent once");
}

/// Two POSTs without an `Idempotency-Key` (not safe to repeat) in flight at
/// once on one HTTP/2 connection to `server`: streams 1 and 3.
async fn two_posts(server: &RawH2) -> (Result<u16, leakless::Error>, Result<u16, leakless::Error>) {
    let client = Client::builder().http2_prior_knowledge().build().unwrap();
    let post = |n: u32| {
        let (client, url) = (client.clone(), server.url(n));
        async move {
            let res = client.post(url).body("pay 10").send().await?;
            let status = res.status().as_u16();
            res.bytes().await?;
            Ok(status)
        }
    };
    bounded(async { tokio::join!(post(1), post(2)) }).await
}

/// Each connection's number (1, 2, ... in accept order) and the ids of the
/// streams the client opened on it.
type Seen = Arc<Mutex<Vec<(usize, Vec<u32>)>>>;

/// The raw h2c server, and what it saw: each connection's stream ids, in
/// accept order.
struct RawH2 {
    addr: std::net::SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl RawH2 {
    /// Listens on a free loopback port; its first connection says GOAWAY
    /// with `last` as its last-stream-id.
    async fn start(last: u32) -> RawH2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                for conn in 1.. {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    seen.lock().unwrap().push((conn, Vec::new()));
                    let goaway = (conn == 1).then_some(last);
                    tokio::spawn(serve(tcp, conn, goaway, seen.clone()));
                }
            }
        });
        RawH2 { addr, seen, task }
    }

    fn url(&self, n: u32) -> String {
        format!("http://{}/{n}", self.addr)
    }

    fn streams(&self) -> Vec<(usize, Vec<u32>)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for RawH2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: acknowledges the client's SETTINGS and PINGs; with
/// `goaway`, waits for streams 1 and 3, says GOAWAY
/// with that last-stream-id, answers stream 1, shuts its side and reads
/// until the client closes; else answers each request as it comes.
async fn serve(mut tcp: TcpStream, conn: usize, goaway: Option<u32>, seen: Seen) {
    if !accept_h2c(&mut tcp).await {
        return;
    }
    let mut opened = Vec::new();
    while let Some((kind, flags, stream, payload)) = read_frame(&mut tcp).await {
        let mut out = Vec::new();
        if kind == HEADERS {
            opened.push(stream);
            seen.lock().unwrap()[conn - 1].1.push(stream);
        }
        reply(&mut out, (kind, flags, stream, &payload), goaway.is_none());
        if let Some(last) = goaway
            && opened.len() == 2
        {
            let mut payload = last.to_be_bytes().to_vec();
            payload.extend_from_slice(&NO_ERROR.to_be_bytes());
            frame(&mut out, GOAWAY, 0, 0, &payload);
            frame(
                &mut out,
                HEADERS,
                END_HEADERS | END_STREAM,
                1,
                &[STATUS_200],
            );
            if tcp.write_all(&out).await.is_err() {
                return;
            }
            // A FIN, then what the client still sends is read (and dropped)
            // so that the close stays a FIN rather than a reset.
            let _ = tcp.shutdown().await;
            let mut sink = [0u8; 4096];
            while let Ok(1..) = tcp.read(&mut sink).await {}
            return;
        }
        if tcp.write_all(&out).await.is_err() {
            return;
        }
    }
}
