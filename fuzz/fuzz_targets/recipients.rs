//! Fuzzes the recipient parser (`to=`): it must never panic, and never take long. libFuzzer's
//! `-report_slow_units` lists slow inputs; an input that takes longer than `SLOW` is made a crash
//! here, so it is saved under `fuzz/artifacts/` like any other finding.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

/// Far above an ordinary 64 KiB list (a few ms), far below the 100 ms the quadratic case took.
const SLOW: Duration = Duration::from_millis(50);

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let started = Instant::now();
    email_sessions::fuzzing::parse_recipients(raw);
    let took = started.elapsed();
    assert!(took < SLOW, "{} bytes took {took:?}", raw.len());
});
