//! Behaviour scenarios (../shared/SCENARIOS.md) against real loopback
//! servers: one integration binary, one module per theme.

mod support;

mod limits;
mod nginx;
mod reuse;
