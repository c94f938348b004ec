//! Test server (being written).
