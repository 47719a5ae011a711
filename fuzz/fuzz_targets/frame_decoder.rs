#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gun_nif_fuzz::frame_decoder(data));
