//! promtool's rule unit-test files through `rules::unittest::parse_test_file`, which also
//! expands every input series' notation (`rules::series`: `metric{a="b"}` and
//! `1+2x10 _x3 stale` value strings).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redline_collector::rules::{series, unittest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = unittest::parse_test_file(Path::new("/src/rules/fuzz_test.yml"), text) {
        for e in &errors {
            let _ = e.to_string();
        }
    }
    // Short inputs are also tried as bare series notation and value strings.
    if text.len() < 256 && !text.contains('\n') {
        let _ = series::parse_series(text);
        let _ = series::parse_values(text);
    }
});
