//! `alertmanager.yml` through the Alertmanager configuration loader (`alert::amconfig::parse`:
//! Go yaml.v2's reading of the tree, routes, receivers, inhibition, time intervals, templates).
//! `*_file` secrets read as a fixed string, so nothing touches the file system.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redline_collector::alert::amconfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = |_: &Path| -> std::io::Result<Vec<u8>> { Ok(b"s3cr3t\n".to_vec()) };
    match amconfig::parse(Path::new("/etc/redline/alertmanager.yml"), text, &read) {
        Ok(config) => {
            let _ = config.inhibitor();
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
