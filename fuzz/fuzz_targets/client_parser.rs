//! libFuzzer target: the client-side parser on arbitrary bytes, split arbitrarily.
//! The checks are in `fanbench_fuzz::check_client_parser` (also run on stable by its tests).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fanbench_fuzz::check_client_parser(data);
});
