//! leakless (being written).
