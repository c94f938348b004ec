//! Name resolution as a plug-in: the [`Resolve`] trait a client asks for
//! a host's addresses, with reqwest's shape so resolvers port across. The
//! system resolver, `resolve` overrides and hickory live in the connect
//! layer; this is only the vocabulary.

use std::{error::Error as StdError, fmt, future::Future, net::SocketAddr, pin::Pin, str::FromStr};

/// The addresses a name resolved to, in the resolver's order.
pub type Addrs = Box<dyn Iterator<Item = SocketAddr> + Send>;

/// What [`Resolve::resolve`] returns: a future of the addresses.
pub type Resolving =
    Pin<Box<dyn Future<Output = Result<Addrs, Box<dyn StdError + Send + Sync>>> + Send>>;

/// Resolves host names to addresses; set one with
/// [`ClientBuilder::dns_resolver`](crate::ClientBuilder::dns_resolver).
///
/// The ports of the returned addresses are ignored: the URL's port is
/// used. Resolution is bounded by `connect_timeout`, together with the
/// TCP connect.
///
/// ```
/// use std::{net::SocketAddr, sync::Arc};
/// use leakless::dns::{Addrs, Name, Resolve, Resolving};
///
/// struct Fixed(SocketAddr);
///
/// impl Resolve for Fixed {
///     fn resolve(&self, _name: Name) -> Resolving {
///         let addr = self.0;
///         Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
///     }
/// }
///
/// let client = leakless::Client::builder()
///     .dns_resolver(Arc::new(Fixed(([127, 0, 0, 1], 0).into())))
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
pub trait Resolve: Send + Sync {
    /// The addresses of `name`.
    fn resolve(&self, name: Name) -> Resolving;
}

impl fmt::Debug for dyn Resolve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolve")
    }
}

/// A host name to resolve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(Box<str>);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Name {
        Name(name.into())
    }
}

impl FromStr for Name {
    type Err = std::convert::Infallible;

    fn from_str(name: &str) -> Result<Name, Self::Err> {
        Ok(Name(name.into()))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
