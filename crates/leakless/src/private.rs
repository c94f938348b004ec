//! Not API: a harness so the criterion benches can time the pool's
//! checkout and return without a request around them.

use std::net::SocketAddr;

use crate::{
    config::Config,
    conn,
    pool::{Checkout, HostKey, Pool},
};

/// A pool holding idle connections to one host, for benches.
#[derive(Debug)]
pub struct PoolBench {
    pool: Pool,
    key: HostKey,
}

impl PoolBench {
    /// Opens `conns` real connections to `addr` (which must accept them) and
    /// leaves them idle in a fresh pool.
    pub async fn new(addr: SocketAddr, conns: usize) -> PoolBench {
        let pool = Pool::new(Config {
            idle_conn_timeout: None,
            ..Config::default()
        });
        let key =
            HostKey::from_uri(&format!("http://{addr}/").parse().expect("valid")).expect("valid");
        let mut leases = Vec::new();
        for _ in 0..conns {
            match pool
                .checkout(&key, std::panic::Location::caller())
                .await
                .expect("room")
            {
                Checkout::Dial(slot) => {
                    match conn::dial(slot, &key, &mut crate::trace::Tracer::default())
                        .await
                        .expect("connects")
                    {
                        conn::Dialed::H1(lease) => leases.push(lease),
                        conn::Dialed::H2(_) => unreachable!("plain http speaks HTTP/1.1"),
                    }
                }
                _ => unreachable!("nothing is idle yet"),
            }
        }
        leases.into_iter().for_each(|l| l.release());
        PoolBench { pool, key }
    }

    /// One checkout of an idle connection and its return.
    pub fn checkout_release(&self) {
        match self.pool.try_checkout_now(&self.key) {
            Some(Checkout::Reused(lease)) => lease.release(),
            _ => panic!("no idle connection: more threads than connections?"),
        }
    }
}

/// Sizes of the hot path's values, for tuning (printed by a test).
pub fn sizes() -> Vec<(&'static str, usize)> {
    let client = crate::Client::new();
    let send = client.get("http://127.0.0.1:1/").send();
    vec![
        ("Lease", std::mem::size_of::<crate::lease::Lease>()),
        ("Slot", std::mem::size_of::<crate::lease::Slot>()),
        ("H1Conn", std::mem::size_of::<crate::h1::H1Conn>()),
        ("Checkout", std::mem::size_of::<crate::pool::Checkout>()),
        ("Incoming", std::mem::size_of::<crate::Incoming>()),
        ("Response", std::mem::size_of::<crate::Response>()),
        ("send future", std::mem::size_of_val(&send)),
    ]
}
