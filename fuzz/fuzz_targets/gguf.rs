//! libFuzzer entry for `ollmlx::fuzz::gguf` (the target itself lives in src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ollmlx_fuzz::survive_stack_overflow();
    ollmlx::fuzz::gguf(data)
});
