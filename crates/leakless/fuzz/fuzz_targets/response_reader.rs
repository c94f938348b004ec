//! The HTTP/1.1 response reader (head parse with 1xx skipping, RFC 9112
//! framing, body decoding) over arbitrary server bytes, read whole, in
//! seeded random pieces and a byte at a time: it must never panic, the
//! three readings must agree, and the framing's invariants must hold.
//! Input layout: see `leakless::fuzzing::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| leakless::fuzzing::check(data));
