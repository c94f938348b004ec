//! `Client` (and `&Client`) as a `tower_service::Service` over
//! `http::Request<B>`, answering `http::Response<Incoming>`, so tower's
//! layers (timeouts, concurrency limits, retries) wrap it. Always ready:
//! the pool's own queue, bounded by `pool_wait_timeout`, is the
//! backpressure. Dropping the future at any point leaves nothing behind,
//! as for `send`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use super::Client;
use crate::{body::Body, body::Incoming, error::Error};

/// What `call` returns.
type Calling = Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, Error>> + Send>>;

/// The same service for an owned client and a borrowed one.
macro_rules! service {
    ($client:ty) => {
        impl<B: Into<Body>> tower_service::Service<http::Request<B>> for $client {
            type Response = http::Response<Incoming>;
            type Error = Error;
            type Future = Calling;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
                Poll::Ready(Ok(()))
            }

            #[track_caller]
            fn call(&mut self, req: http::Request<B>) -> Calling {
                call(self, req)
            }
        }
    };
}

service!(Client);
service!(&Client);

#[track_caller]
fn call<B: Into<Body>>(client: &Client, req: http::Request<B>) -> Calling {
    let sent = client.execute(req);
    Box::pin(async move { sent.await.map(Into::into) })
}
