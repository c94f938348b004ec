//! Behaviour scenarios (../shared/SCENARIOS.md) against real loopback
//! servers: one integration binary, one module per theme.

mod support;

mod differential;
mod limits;
mod nginx;
mod reuse;
