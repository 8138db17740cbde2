//! Go `text/template` as the rules and notifications run it (`rules::template`): the input is
//! parsed as an alert template (Prometheus' functions and prelude variables) and rendered for
//! a fixed alert, with a `query` that answers two samples; then parsed against Alertmanager's
//! functions and rendered over notification-shaped data. Render errors are formatted as Go
//! formats them (`exec_error_text`, which slices the source at the error's offset).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use redline_collector::rules::template::{
    Data, Env, Library, QuerySample, Struct, Template, Value,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn query(q: &str) -> Result<Vec<QuerySample>, String> {
    if q.is_empty() {
        return Err("empty query".into());
    }
    Ok(vec![
        QuerySample {
            labels: labels(&[("__name__", "up"), ("instance", "a:9100")]),
            value: 1.0,
        },
        QuerySample {
            labels: labels(&[("__name__", "up"), ("instance", "b:9100")]),
            value: f64::NAN,
        },
    ])
}

fn render_prometheus(text: &str) {
    let Ok(t) = Template::parse(text) else {
        return;
    };
    let alert_labels = labels(&[
        ("alertname", "HighLatency"),
        ("instance", "host-1:9100"),
        ("severity", "page"),
    ]);
    let external = labels(&[("cluster", "eu-1")]);
    let data = Data {
        labels: &alert_labels,
        external_labels: &external,
        external_url: "http://redline.example:9190/prefix",
        value: 0.731,
        query: Some(&query),
    };
    if let Err(e) = t.render(&data) {
        let _ = t.exec_error_text("__alert_HighLatency", &e);
    }
}

fn render_alertmanager(text: &str) {
    let Ok(t) = Template::parse_with(text, Library::Alertmanager) else {
        return;
    };
    let start = jiff::Timestamp::from_second(1_700_000_000).unwrap_or_default();
    let alert = |status: &str, instance: &str| {
        Value::Struct(Struct::new(
            "template.Alert",
            vec![
                ("Status", Value::from(status)),
                (
                    "Labels",
                    Value::Kv(labels(&[("alertname", "Down"), ("instance", instance)])),
                ),
                (
                    "Annotations",
                    Value::Kv(labels(&[("summary", "it is down")])),
                ),
                ("StartsAt", Value::Time(start)),
                ("EndsAt", Value::Time(jiff::Timestamp::UNIX_EPOCH)),
                ("GeneratorURL", Value::from("http://x/graph?g0.expr=up")),
                ("Fingerprint", Value::from("0123456789abcdef")),
            ],
        ))
    };
    let firing = alert("firing", "a");
    let resolved = alert("resolved", "b");
    let alerts = Value::ListWithFields(
        vec![firing.clone(), resolved.clone()],
        BTreeMap::from([
            ("Firing".to_owned(), Value::List(vec![firing])),
            ("Resolved".to_owned(), Value::List(vec![resolved])),
        ]),
    );
    let dot = Value::Struct(Struct::new(
        "template.Data",
        vec![
            ("Receiver", Value::from("ops")),
            ("Status", Value::from("firing")),
            ("Alerts", alerts),
            ("GroupLabels", Value::Kv(labels(&[("alertname", "Down")]))),
            ("CommonLabels", Value::Kv(labels(&[("alertname", "Down")]))),
            ("CommonAnnotations", Value::Kv(BTreeMap::new())),
            ("ExternalURL", Value::from("http://redline.example:9190")),
            (
                "Extra",
                Value::Map(BTreeMap::from([("n".to_owned(), Value::Int(3))])),
            ),
        ],
    ));
    if let Err(e) = t.render_with(&dot, &Env::default()) {
        let _ = t.exec_error_text("email.subject", &e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    render_prometheus(text);
    render_alertmanager(text);
});
