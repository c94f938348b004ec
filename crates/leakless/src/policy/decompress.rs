//! Transparent decompression, as Go and reqwest do it: the encodings the
//! client can decode are offered in `Accept-Encoding` unless the caller
//! set that header (then the body comes back as sent), and a response in
//! one of them is decoded as it is read, its connection still owned by
//! the body underneath.

use http::{HeaderMap, Method, StatusCode, header};

use crate::{body::Encoding, config::Config, response::Response};

/// Offers the client's encodings in `headers`, those of a request with
/// `method`; whether it did (and so whether to decode the answer).
pub(super) fn offer(cfg: &Config, method: &Method, headers: &mut HeaderMap) -> bool {
    let Some(offer) = &cfg.accept_encoding else {
        return false;
    };
    // Go: not for HEAD (no body) nor a Range (its offsets are the encoded body's).
    if *method == Method::HEAD
        || headers.contains_key(header::ACCEPT_ENCODING)
        || headers.contains_key(header::RANGE)
    {
        return false;
    }
    headers.insert(header::ACCEPT_ENCODING, offer.clone());
    true
}

/// Decodes `res` when it is in an encoding the client offered. A HEAD, 204
/// or 304 response has no body to decode whatever its headers say.
pub(super) fn decode(cfg: &Config, method: &Method, res: &mut Response) {
    if !res.may_be_encoded()
        || *method == Method::HEAD
        || matches!(
            res.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    {
        return;
    }
    let Some(encoding) = res
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(Encoding::from_header)
    else {
        return;
    };
    if cfg.decompress.allows(encoding.token()) {
        res.decode(encoding);
    }
}
