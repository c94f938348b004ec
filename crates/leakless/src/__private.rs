//! Not API: a harness so the criterion benches can time the pool's
//! checkout and return without a request around them.

use std::net::SocketAddr;

use crate::{
    config::Config,
    connect::Connector,
    pool::{self, Checkout, Dialed, Pool},
    route::Route,
    trace::Tracer,
};

/// A pool holding idle connections to one host, for benches.
#[derive(Debug)]
pub struct PoolBench {
    pool: Pool,
    route: Route,
}

impl PoolBench {
    /// Opens `conns` real connections to `addr` (which must accept them) and
    /// leaves them idle in a fresh pool.
    pub async fn new(addr: SocketAddr, conns: usize) -> PoolBench {
        let config = Config {
            idle_conn_timeout: None,
            ..Config::default()
        };
        let connector = Connector::new(&config).expect("the default TLS settings are valid");
        let pool = Pool::new(config, connector);
        let route =
            Route::from_uri(&format!("http://{addr}/").parse().expect("valid")).expect("valid");
        let mut leases = Vec::new();
        for _ in 0..conns {
            match pool
                .checkout(&route, std::panic::Location::caller())
                .await
                .expect("room")
            {
                Checkout::Dial(slot) => {
                    match pool::dial(slot, &route, &mut Tracer::default())
                        .await
                        .expect("connects")
                    {
                        Dialed::H1(lease) => leases.push(lease),
                        Dialed::H2(_) => unreachable!("plain http speaks HTTP/1.1"),
                    }
                }
                _ => unreachable!("nothing is idle yet"),
            }
        }
        leases.into_iter().for_each(|l| l.release());
        PoolBench { pool, route }
    }

    /// One checkout of an idle connection and its return.
    pub fn checkout_release(&self) {
        match self.pool.try_checkout_now(&self.route) {
            Some(Checkout::Reused(lease)) => lease.release(),
            _ => panic!("no idle connection: more threads than connections?"),
        }
    }
}

/// Sizes of the hot path's values, for tuning: call it from a scratch test
/// and print it (a release build gives the sizes that matter).
pub fn sizes() -> Vec<(&'static str, usize)> {
    let client = crate::Client::new();
    let send = client.get("http://127.0.0.1:1/").send();
    vec![
        ("Lease", std::mem::size_of::<crate::pool::Lease>()),
        ("Slot", std::mem::size_of::<crate::pool::Slot>()),
        ("H1Conn", std::mem::size_of::<crate::http1::H1Conn>()),
        ("Checkout", std::mem::size_of::<crate::pool::Checkout>()),
        ("Incoming", std::mem::size_of::<crate::Incoming>()),
        ("Response", std::mem::size_of::<crate::Response>()),
        ("send future", std::mem::size_of_val(&send)),
    ]
}
