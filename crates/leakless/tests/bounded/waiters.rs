//! 10,000 requests in flight against `max_conns_per_host(100)`.
