#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = bgp_fuzz::bfd(data);
});
