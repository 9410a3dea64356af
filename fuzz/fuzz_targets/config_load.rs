//! Any text as the proxy's config and as a policy file: loading either ends in a value or an
//! error that says where, never a panic; a policy set that loads is judged on a fixed request.
#![no_main]

use gatehouse::Config;
use gatehouse::config::policies::from_texts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_yaml(text, "fuzz.yaml");
    let _ = from_texts(vec![("fuzz.yaml".to_string(), text.to_string())], "/nonexistent");
});
