//! OTLP names → Prometheus names, as Prometheus' own OTLP receiver makes them (its
//! `otlptranslator`, with the default "underscore escaping with suffixes" strategy). The agent's
//! `/metrics` and the collector's store both name series with these functions, so a query
//! written against one works against the other, and against a Prometheus fed the same OTLP.
//!
//! | OTLP                            | Prometheus                                          |
//! |---------------------------------|-----------------------------------------------------|
//! | name `system.cpu.time`          | split on every character but `[A-Za-z0-9:]`, joined by `_` |
//! | unit `s`, `By`, `ms`, …         | `_seconds`, `_bytes`, `_milliseconds` appended unless already a token |
//! | unit `{packet}`                 | nothing (an annotation)                             |
//! | unit `A/B`                      | `_A_per_B` (per-unit `s` → `second`, …)             |
//! | unit not in the tables (`kW.h`) | itself, invalid characters as `_` (`kW_h`)          |
//! | monotonic Sum                   | `_total` (moved to the end if the name had it)      |
//! | Gauge with unit `1`             | `_ratio`                                            |
//! | a leading digit                 | `_` before it                                       |
//! | attribute `a.b`, `2x`, `_x`     | label `a_b`, `key_2x`, `key_x` (`__x` stays)        |
//!
//! Only ASCII letters and digits survive: a classic Prometheus name has no others, and PromQL
//! could not select a series whose name had them.

/// What decides the type suffixes of a metric's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// A monotonic Sum: `_total`.
    MonotonicCounter,
    /// An OTLP Gauge: `_ratio` when its unit is `1`.
    Gauge,
    /// Everything else (non-monotonic Sums, histograms, summaries): no type suffix.
    Other,
}

/// Characters a name token keeps; every other one separates tokens.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// A unit suffix as a name part: invalid characters become `_`, runs of `_` one, and a
/// leading `_` goes.
fn clean_unit(suffix: &str) -> String {
    let mut out = String::with_capacity(suffix.len());
    for c in suffix.chars() {
        let c = if is_name_char(c) { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_owned(),
        None => out,
    }
}

/// The main and the `per_…` suffix of a unit (each empty when there is none).
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main, Some(per)),
        None => (unit, None),
    };
    let annotation = |u: &str| u.contains(['{', '}']);
    let main = main.trim();
    let main = if main.is_empty() || annotation(main) {
        String::new()
    } else {
        clean_unit(unit_word(main).unwrap_or(main))
    };
    let per = match per.map(str::trim) {
        Some(per) if !per.is_empty() && !annotation(per) => {
            clean_unit(&format!("per_{}", per_unit_word(per).unwrap_or(per)))
        }
        _ => String::new(),
    };
    (main, per)
}

/// The Prometheus name of an OTLP metric (see the module's table). Empty only when the name
/// and the unit have no letter or digit.
pub fn metric_name(name: &str, unit: &str, metric_type: MetricType) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_name_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (mut main, mut per) = unit_suffixes(unit);
    if tokens.contains(&main) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    for suffix in [main, per] {
        if !suffix.is_empty() {
            tokens.push(suffix);
        }
    }
    let mut move_to_end = |word: &str| {
        tokens.retain(|t| t != word);
        tokens.push(word.to_owned());
    };
    match metric_type {
        MetricType::MonotonicCounter => move_to_end("total"),
        MetricType::Gauge if unit == "1" => move_to_end("ratio"),
        MetricType::Gauge | MetricType::Other => {}
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus label name of an OTLP attribute key: every character but an ASCII letter or
/// digit becomes `_`; then a leading digit gets `key_` before it, and a single leading `_`
/// gets `key` (a double one, Prometheus' reserved prefix, stays).
pub fn label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_prometheus_otlp_translator_makes_them() {
        use MetricType::*;
        let cases = [
            // The agent's host metrics.
            (
                "system.cpu.time",
                "s",
                MonotonicCounter,
                "system_cpu_time_seconds_total",
            ),
            (
                "system.cpu.utilization",
                "1",
                Gauge,
                "system_cpu_utilization_ratio",
            ),
            (
                "system.memory.usage",
                "By",
                Other,
                "system_memory_usage_bytes",
            ),
            (
                "system.cpu.load_average.1m",
                "{thread}",
                Gauge,
                "system_cpu_load_average_1m",
            ),
            (
                "system.disk.io",
                "By",
                MonotonicCounter,
                "system_disk_io_bytes_total",
            ),
            (
                "system.disk.operations",
                "{operation}",
                MonotonicCounter,
                "system_disk_operations_total",
            ),
            (
                "system.disk.io_time",
                "s",
                MonotonicCounter,
                "system_disk_io_time_seconds_total",
            ),
            (
                "system.network.packets",
                "{packet}",
                MonotonicCounter,
                "system_network_packets_total",
            ),
            ("system.uptime", "s", Gauge, "system_uptime_seconds"),
            // Other units and names.
            (
                "http.server.duration",
                "ms",
                Other,
                "http_server_duration_milliseconds",
            ),
            ("requests_total", "", MonotonicCounter, "requests_total"),
            (
                "requests.total.count",
                "",
                MonotonicCounter,
                "requests_count_total",
            ),
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            ("rate", "1/s", Gauge, "rate_per_second"),
            ("rate", "{req}/s", Gauge, "rate_per_second"),
            ("rate", "/s", Gauge, "rate_per_second"),
            ("rate", "By/", Gauge, "rate_bytes"),
            ("rate", "By/{x}", Gauge, "rate_bytes"),
            ("latency.seconds", "s", Gauge, "latency_seconds"),
            ("ratio.used", "1", Gauge, "used_ratio"),
            ("used", "1", Other, "used"),
            ("9lives", "", Gauge, "_9lives"),
            ("temp", "Cel", Gauge, "temp_celsius"),
            ("energy", "kW.h", Gauge, "energy_kW_h"),
            ("energy", "kW..h/y", Gauge, "energy_kW_h_per_year"),
            ("heat", "°C", Gauge, "heat_C"),
            ("packets", "  By  ", Gauge, "packets_bytes"),
            // Only ASCII letters, digits and `:` stay; everything else separates.
            ("café.latency", "ms", Gauge, "caf_latency_milliseconds"),
            ("ns:rule.rate", "", Gauge, "ns:rule_rate"),
            ("a__b--c", "", Gauge, "a_b_c"),
            ("", "s", Gauge, "seconds"),
            ("...", "", Gauge, ""),
        ];
        for (name, unit, metric_type, want) in cases {
            assert_eq!(
                metric_name(name, unit, metric_type),
                want,
                "{name:?} {unit:?}"
            );
        }
    }

    #[test]
    fn label_names_keep_ascii_letters_and_digits() {
        assert_eq!(label_name("host.name"), "host_name");
        assert_eq!(
            label_name("http.response.status_code"),
            "http_response_status_code"
        );
        assert_eq!(label_name("state"), "state");
        assert_eq!(label_name("2x"), "key_2x");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
        assert_eq!(label_name("café"), "caf_");
        assert_eq!(label_name("é"), "key_");
        assert_eq!(label_name("-x"), "key_x");
        assert_eq!(label_name(""), "");
    }
}
