//! Finding a host's addresses: `resolve` overrides first (curl's
//! `--resolve`), then the client's resolver, else hickory (with the
//! `hickory-dns` feature), else the system's (getaddrinfo on tokio's
//! blocking pool). The URL's port always wins over
//! whatever port a resolver put in its answers.

use std::{collections::HashMap, io, net::SocketAddr, sync::Arc};

use crate::{
    config::DialOptions,
    dns::{Name, Resolve},
};

/// A client's name resolution, built once.
#[derive(Debug)]
pub(crate) struct Resolver {
    custom: Option<Arc<dyn Resolve>>,
    overrides: HashMap<String, Vec<SocketAddr>>,
}

impl Resolver {
    pub fn new(opts: &DialOptions) -> Resolver {
        #[cfg(feature = "hickory-dns")]
        let hickory = opts
            .hickory
            .then(|| Arc::new(super::hickory::Hickory::default()) as Arc<dyn Resolve>);
        #[cfg(not(feature = "hickory-dns"))]
        let hickory = None;
        Resolver {
            custom: opts.resolver.clone().or(hickory),
            overrides: opts.overrides.clone(),
        }
    }

    /// The addresses of `host`, each with `port`.
    pub async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if !self.overrides.is_empty() {
            if let Some(pinned) = self.overrides.get(&host.to_ascii_lowercase()) {
                return Ok(with_port(pinned.iter().copied(), port));
            }
        }
        let found = match &self.custom {
            Some(custom) => custom
                .resolve(Name::from(host))
                .await
                .map(|addrs| with_port(addrs, port))
                .map_err(io::Error::other)?,
            None => tokio::net::lookup_host((host, port)).await?.collect(),
        };
        if found.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolved to no address"),
            ));
        }
        Ok(found)
    }
}

fn with_port(addrs: impl Iterator<Item = SocketAddr>, port: u16) -> Vec<SocketAddr> {
    addrs
        .map(|mut a| {
            a.set_port(port);
            a
        })
        .collect()
}
