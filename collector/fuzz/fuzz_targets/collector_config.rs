//! The collector's configuration file through `Config::from_yaml` (raw serde structs with
//! `deny_unknown_fields`, then validation). A `hmac_secret_file` is read when the rest is valid;
//! the fuzzer has yet to invent a readable path that matters.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redline_collector::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_yaml(text, Path::new("/etc/redline/collector.yml")) {
        let _ = e.to_string();
    }
});
