//! Happy Eyeballs v2 (RFC 8305): connect to whichever address answers
//! first. Addresses are interleaved by family (the resolver's first
//! family leads); the next attempt starts after `fallback_delay`, or at
//! once when one fails; the first to connect wins and the rest are
//! dropped (closed) and counted as losers. The whole race is one dial for
//! the pool and is bounded by `connect_timeout` by the caller.

use std::{
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    pin::Pin,
    task::Poll,
};

use tokio::net::TcpStream;

use super::tcp;
use crate::{config::DialOptions, trace::Tracer};

type Attempt<'a> = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + 'a>>;

/// The first of `addrs` to connect; `lost` counts the attempts it beat.
pub(super) async fn race(
    addrs: Vec<SocketAddr>,
    opts: &DialOptions,
    tracer: &mut Tracer,
    lost: &mut u32,
) -> io::Result<TcpStream> {
    let mut queue = order(addrs, opts)?.into_iter();
    let mut running: Vec<(SocketAddr, Attempt<'_>)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let first = queue.next().expect("order() returns at least one address");
    start(first, opts, &mut running, tracer);
    let mut next_at = Box::pin(tokio::time::sleep(opts.fallback_delay));
    loop {
        let more = !queue.as_slice().is_empty();
        let done = poll_fn(|cx| {
            for (i, (_, attempt)) in running.iter_mut().enumerate() {
                if let Poll::Ready(res) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Some((i, res)));
                }
            }
            if more && next_at.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match done {
            Some((i, Ok(tcp))) => {
                let (addr, _) = running.swap_remove(i);
                tracer.connect_done(addr, None);
                for (addr, attempt) in running.drain(..) {
                    drop(attempt);
                    *lost += 1;
                    if tracer.is_on() {
                        let why = io::Error::other("closed: another address connected first");
                        tracer.connect_done(addr, Some(&why));
                    }
                }
                return Ok(tcp);
            }
            Some((i, Err(e))) => {
                let (addr, _) = running.swap_remove(i);
                tracer.connect_done(addr, Some(&e));
                failed.push(format!("{addr}: {e}"));
                if let Some(addr) = queue.next() {
                    start(addr, opts, &mut running, tracer);
                    next_at
                        .as_mut()
                        .reset(tokio::time::Instant::now() + opts.fallback_delay);
                } else if running.is_empty() {
                    let kind = e.kind();
                    return Err(io::Error::new(kind, failed.join("; ")));
                }
            }
            None => {
                let addr = queue.next().expect("polled only with addresses left");
                start(addr, opts, &mut running, tracer);
                next_at
                    .as_mut()
                    .reset(tokio::time::Instant::now() + opts.fallback_delay);
            }
        }
    }
}

fn start<'a>(
    addr: SocketAddr,
    opts: &'a DialOptions,
    running: &mut Vec<(SocketAddr, Attempt<'a>)>,
    tracer: &mut Tracer,
) {
    tracer.connect_start(addr);
    running.push((addr, Box::pin(tcp::connect(addr, opts))));
}

/// The order to try: families interleaved, led by the first address's
/// family (RFC 8305 section 4). With a local address bound, only its
/// family can be reached (as Go's dialer filters).
fn order(addrs: Vec<SocketAddr>, opts: &DialOptions) -> io::Result<Vec<SocketAddr>> {
    let total = addrs.len();
    let addrs: Vec<SocketAddr> = match opts.local_address {
        Some(local) => addrs
            .into_iter()
            .filter(|a| a.is_ipv4() == local.is_ipv4())
            .collect(),
        None => addrs,
    };
    let Some(lead) = addrs.first().map(SocketAddr::is_ipv4) else {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "none of the {total} address(es) is of the family of local_address {}",
                opts.local_address.map_or(String::new(), |a| a.to_string())
            ),
        ));
    };
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv4() == lead);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    loop {
        match (first.pop(), second.pop()) {
            (None, None) => return Ok(out),
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_led_by_the_first_answer() {
        let got = order(
            addrs(&[
                "[::1]:80",
                "[::2]:80",
                "[::3]:80",
                "127.0.0.1:80",
                "127.0.0.2:80",
            ]),
            &DialOptions::default(),
        )
        .unwrap();
        assert_eq!(
            got,
            addrs(&[
                "[::1]:80",
                "127.0.0.1:80",
                "[::2]:80",
                "127.0.0.2:80",
                "[::3]:80"
            ])
        );
        let got = order(
            addrs(&["127.0.0.1:80", "[::1]:80", "127.0.0.2:80"]),
            &DialOptions::default(),
        )
        .unwrap();
        assert_eq!(got, addrs(&["127.0.0.1:80", "[::1]:80", "127.0.0.2:80"]));
    }

    #[test]
    fn a_local_address_keeps_only_its_family() {
        let opts = DialOptions {
            local_address: Some("127.0.0.1".parse().unwrap()),
            ..DialOptions::default()
        };
        let got = order(addrs(&["[::1]:80", "127.0.0.2:80"]), &opts).unwrap();
        assert_eq!(got, addrs(&["127.0.0.2:80"]));
        let e = order(addrs(&["[::1]:80"]), &opts).unwrap_err();
        assert!(e.to_string().contains("local_address 127.0.0.1"), "{e}");
    }
}
