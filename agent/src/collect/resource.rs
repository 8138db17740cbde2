//! The OTLP resource describing this host, detected once at startup: `host.name`, `host.id`
//! (the machine-id), `host.arch`, `os.type`, `os.description`, `service.name`,
//! `service.instance.id`, `service.version`, then the operator's
//! `host_metrics.resource_attributes`, which add keys or replace detected ones.

use std::collections::BTreeMap;
use std::path::Path;

use super::otlp::kv;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// What was detected about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub host_name: String,
    pub host_id: Option<String>,
    pub arch: &'static str,
    pub os_description: Option<String>,
}

/// Maps Rust's `std::env::consts::ARCH` to the semantic-convention `host.arch` values.
pub fn semconv_arch(arch: &'static str) -> &'static str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "x86" => "x86",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// `PRETTY_NAME` (or `NAME`) from an os-release file, unquoted.
pub fn parse_os_release(text: &str) -> Option<String> {
    let mut name = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        match k.trim() {
            "PRETTY_NAME" if !v.is_empty() => return Some(v.to_string()),
            "NAME" if !v.is_empty() => name = Some(v.to_string()),
            _ => {}
        }
    }
    name
}

fn read_trimmed(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Detects the host's identity from procfs and `/etc` (falling back to uname(2) for the host
/// name and to `/var/lib/dbus/machine-id` and `/usr/lib/os-release`).
pub fn detect(proc_root: &Path, etc_root: &Path) -> HostInfo {
    let host_name = read_trimmed(&proc_root.join("sys/kernel/hostname")).unwrap_or_else(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    });
    let host_id = read_trimmed(&etc_root.join("machine-id"))
        .or_else(|| read_trimmed(Path::new("/var/lib/dbus/machine-id")));
    let pretty = std::fs::read_to_string(etc_root.join("os-release"))
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()
        .and_then(|t| parse_os_release(&t));
    let kernel = read_trimmed(&proc_root.join("sys/kernel/osrelease"));
    let os_description = match (pretty, kernel) {
        (Some(p), Some(k)) => Some(format!("{p} (Linux {k})")),
        (Some(p), None) => Some(p),
        (None, Some(k)) => Some(format!("Linux {k}")),
        (None, None) => None,
    };
    HostInfo {
        host_name,
        host_id,
        arch: semconv_arch(std::env::consts::ARCH),
        os_description,
    }
}

/// Builds the resource from detected facts and operator overrides.
pub fn resource(info: &HostInfo, overrides: &BTreeMap<String, String>) -> Resource {
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(8 + overrides.len());
    attrs.push(kv("host.name", info.host_name.as_str()));
    if let Some(id) = &info.host_id {
        attrs.push(kv("host.id", id.as_str()));
    }
    attrs.push(kv("host.arch", info.arch));
    attrs.push(kv("os.type", "linux"));
    if let Some(d) = &info.os_description {
        attrs.push(kv("os.description", d.as_str()));
    }
    attrs.push(kv("service.name", "redline-agent"));
    attrs.push(kv("service.instance.id", info.host_name.as_str()));
    attrs.push(kv("service.version", env!("CARGO_PKG_VERSION")));
    for (k, v) in overrides {
        let value = Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.clone())),
        });
        match attrs.iter_mut().find(|a| &a.key == k) {
            Some(existing) => existing.value = value,
            None => attrs.push(kv(k, v.as_str())),
        }
    }
    Resource {
        attributes: attrs,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn os_release() {
        let t = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            parse_os_release(t).unwrap(),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(parse_os_release("NAME=Alpine\n").unwrap(), "Alpine");
        assert_eq!(parse_os_release("garbage"), None);
    }

    #[test]
    fn detects_from_fixture_dirs() {
        let proc = tempfile::tempdir().unwrap();
        let etc = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(proc.path().join("sys/kernel")).unwrap();
        std::fs::write(proc.path().join("sys/kernel/hostname"), "web-1\n").unwrap();
        std::fs::write(proc.path().join("sys/kernel/osrelease"), "6.1.0\n").unwrap();
        std::fs::write(etc.path().join("machine-id"), "abc123\n").unwrap();
        std::fs::write(etc.path().join("os-release"), "PRETTY_NAME=\"Test OS\"\n").unwrap();
        let info = detect(proc.path(), etc.path());
        assert_eq!(info.host_name, "web-1");
        assert_eq!(info.host_id.as_deref(), Some("abc123"));
        assert_eq!(
            info.os_description.as_deref(),
            Some("Test OS (Linux 6.1.0)")
        );
    }

    #[test]
    fn overrides_replace_and_add() {
        let info = HostInfo {
            host_name: "h".into(),
            host_id: None,
            arch: "amd64",
            os_description: None,
        };
        let mut o = BTreeMap::new();
        o.insert("host.name".to_string(), "renamed".to_string());
        o.insert(
            "deployment.environment.name".to_string(),
            "prod".to_string(),
        );
        let r = resource(&info, &o);
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            get("host.name"),
            Some(any_value::Value::StringValue("renamed".into()))
        );
        assert_eq!(
            get("service.instance.id"),
            Some(any_value::Value::StringValue("h".into()))
        );
        assert_eq!(
            get("deployment.environment.name"),
            Some(any_value::Value::StringValue("prod".into()))
        );
        assert!(get("host.id").is_none());
    }
}
