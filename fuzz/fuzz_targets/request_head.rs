//! Any CONNECT authority, request target and Host value: parsing finishes without panic, a host
//! that parses prints as a host that parses again to the same value, and a path either is
//! canonical or is refused.
#![no_main]

use gatehouse::proxy::target::{Host, Target, canonical_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let authority = lines.next().unwrap_or_default();
    let uri = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    if let Ok(host) = Host::parse(authority) {
        let again = Host::parse(&host.to_string()).expect("a parsed host parses again");
        assert_eq!(host, again);
    }
    if let Ok(parsed) = authority.parse::<http::uri::Authority>() {
        for default_port in [None, Some(443)] {
            if let Ok(target) = Target::from_authority(&parsed, default_port) {
                assert!(target.same_as(authority, 443) || default_port.is_none());
            }
        }
    }
    if let Ok(uri) = uri.parse::<http::Uri>() {
        let _ = Target::of_uri(&uri);
    }
    let _ = canonical_path(path);
});
