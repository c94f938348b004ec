//! hickory-resolver as the client's resolver (the `hickory-dns`
//! feature): one per client, so its cache is shared by every dial. Built
//! on first use, inside the runtime, from the system's resolv.conf.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use hickory_resolver::TokioResolver;

use crate::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Default)]
pub(super) struct Hickory {
    resolver: OnceLock<Result<TokioResolver, Arc<str>>>,
}

impl Resolve for Hickory {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self
            .resolver
            .get_or_init(|| {
                TokioResolver::builder_tokio()
                    .and_then(|b| b.build())
                    .map_err(|e| format!("hickory-resolver could not start: {e}").into())
            })
            .clone();
        Box::pin(async move {
            let resolver = resolver.map_err(|e| e.to_string())?;
            let found = resolver.lookup_ip(name.as_str()).await?;
            let addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_to_loopback_without_the_system_resolver() {
        let found: Vec<SocketAddr> = Hickory::default()
            .resolve(Name::from("localhost"))
            .await
            .unwrap()
            .collect();
        assert!(!found.is_empty());
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }

    #[tokio::test]
    async fn a_client_built_with_the_feature_dials_names_through_hickory() {
        let server = leakless_testserver::TestServer::start(leakless_testserver::Config::new());
        let client = crate::Client::builder().build().unwrap();
        let url = format!("http://localhost:{}/", server.addr().port());
        let body = client.get(url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "hello");
    }
}
