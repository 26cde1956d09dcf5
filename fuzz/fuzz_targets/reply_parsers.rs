//! Feeds arbitrary bytes to every reply parser and to `inspect`: none may panic, and each
//! either reads a message or reports errors with a position.
#![no_main]

use gbal_ncts::{Limits, MessageKind, inspect, parse_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for kind in [MessageKind::Ie037, MessageKind::Ie906, MessageKind::Ie917] {
        if let Err(errors) = parse_reply(data, kind, &limits) {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| e.line >= 1 && e.column >= 1));
        }
    }
    let _ = inspect(data, &limits);
});
