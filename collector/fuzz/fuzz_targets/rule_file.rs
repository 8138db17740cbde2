//! Prometheus rule files through the loader (`rules::file::parse_file`: YAML events walked by
//! hand, PromQL expressions, label and annotation templates, durations), and the duration
//! syntax on its own.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redline_collector::rules::file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = file::parse_file(Path::new("/etc/redline/rules/fuzz.yml"), text);
    for e in &loaded.errors {
        let _ = e.to_string();
    }
    if text.len() < 64
        && let Ok(ms) = file::parse_duration(text)
    {
        let _ = file::format_duration(ms);
    }
});
