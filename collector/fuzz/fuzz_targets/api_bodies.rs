//! Bodies the HTTP API takes from the outside, each through the same decoding and validation
//! as its handler: `POST /api/v1/deployments` (`PostableDeployment::validate`), GitHub's
//! `deployment_status` webhook (`incident::github::parse_delivery`, then validation, and the
//! signature check over the body), Alertmanager API v2 `POST /api/v2/alerts` and
//! `POST /api/v2/silences`. Every input is tried as each body, so seeds stay plain JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_collector::alert::silence::{PostableSilence, Silence};
use redline_collector::incident::deployment::PostableDeployment;
use redline_collector::incident::github;

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = serde_json::from_slice::<PostableDeployment>(data) {
        let _ = d.validate("api");
    }
    if let Ok(Some(d)) = github::parse_delivery(Some("deployment_status"), data) {
        let _ = d.validate("github");
    }
    // The signature header is taken from the body's first line, so the fuzzer can reach the
    // hex decoding; a match is not expected.
    let header = data
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok());
    let _ = github::verify_signature(b"webhook-secret", data, header);
    redline_collector::fuzzing::alertmanager_alerts(data, NOW_MS, 300_000);
    if let Ok(s) = serde_json::from_slice::<PostableSilence>(data) {
        if let Ok(silence) = Silence::from_postable(&s, NOW_MS) {
            let _ = silence.state(NOW_MS);
        }
    }
});
