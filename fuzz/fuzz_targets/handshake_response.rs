#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gun_nif_fuzz::handshake_response(data));
