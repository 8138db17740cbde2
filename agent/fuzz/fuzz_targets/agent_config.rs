//! The agent's configuration file through `Config::from_yaml_str` (raw serde structs with
//! `deny_unknown_fields`, then validation: endpoints, byte sizes, durations, filters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_agent::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml_str(text) {
        Ok(config) => {
            let _ = config.exporter.endpoint();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if text.len() < 64 {
        let _ = redline_agent::config::parse_byte_size(text);
    }
});
