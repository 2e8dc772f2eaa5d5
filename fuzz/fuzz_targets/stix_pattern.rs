//! A STIX pattern string through the lexer, parser and conversion to indicators.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = std::str::from_utf8(data) {
        let _ = islet_intel::stix::indicators(p);
    }
});
