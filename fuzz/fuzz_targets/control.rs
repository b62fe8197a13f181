//! Arbitrary bytes into the control-socket decoder and the control plane.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::control(data));
