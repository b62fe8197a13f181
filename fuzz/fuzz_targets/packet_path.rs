//! Raw frames into a worker with services of every mode and live sessions.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::packet_path(data));
