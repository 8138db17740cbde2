use super::*;

const MIN: i64 = 60_000;
const T0: i64 = 1_800_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn firing(l: &LabelSet, starts_at: i64) -> NotifyAlert {
    NotifyAlert {
        labels: l.clone(),
        annotations: LabelSet::new(),
        starts_at_ms: starts_at,
        ends_at_ms: None,
        generator_url: String::new(),
    }
}

fn resolved(l: &LabelSet, starts_at: i64, ends_at: i64) -> NotifyAlert {
    NotifyAlert {
        ends_at_ms: Some(ends_at),
        ..firing(l, starts_at)
    }
}

fn engine() -> Engine {
    Engine::new(Policy::default(), 1, Vec::new(), Vec::new())
}

fn api_errors() -> LabelSet {
    labels(&[
        ("alertname", "HighErrorRate"),
        ("service", "api"),
        ("environment", "prod"),
        ("severity", "warning"),
        ("instance", "web-1"),
    ])
}

fn deploy(id: &str, finished_at: i64) -> DeploymentMark {
    DeploymentMark {
        id: id.to_owned(),
        service: "api".to_owned(),
        environment: "prod".to_owned(),
        version: "1.0".to_owned(),
        finished_at,
        success: true,
        is_rollback: false,
    }
}

#[test]
fn an_alert_storm_is_one_incident_and_it_resolves_after_a_quiet_period() {
    let mut e = engine();
    let a = api_errors();
    let mut b = a.clone();
    b.insert("instance".into(), "web-2".into());
    let opened = e
        .alert("{}:{service=\"api\"}", &firing(&a, T0), T0)
        .expect("opens");
    assert_eq!(opened.announce, Some(Announcement::Opened));
    assert_eq!(opened.incident.id, 1);
    assert_eq!(opened.incident.severity, Severity::Sev3);
    assert_eq!(opened.incident.service, "api");
    assert_eq!(opened.incident.environment, "prod");
    let kinds: Vec<_> = opened.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Opened, EntryKind::AlertFiring]);
    // The second alert of the same group joins.
    let joined = e
        .alert("{}:{service=\"api\"}", &firing(&b, T0 + MIN), T0 + MIN)
        .expect("joins");
    assert_eq!(joined.incident.id, 1);
    assert_eq!(joined.incident.alerts.len(), 2);
    assert_eq!(joined.announce, None);
    assert_eq!(joined.incident.hosts.len(), 2);
    // A re-announcement changes nothing.
    assert!(
        e.alert("{}:{service=\"api\"}", &firing(&a, T0), T0 + 2 * MIN)
            .is_none()
    );
    // One resolves: still open, not quiet.
    let c = e
        .alert("k", &resolved(&a, T0, T0 + 3 * MIN), T0 + 3 * MIN)
        .expect("member resolves");
    assert_eq!(c.incident.quiet_since, None);
    // Both resolved: quiet, and due five minutes later.
    let c = e
        .alert("k", &resolved(&b, T0 + MIN, T0 + 4 * MIN), T0 + 4 * MIN)
        .expect("member resolves");
    assert_eq!(c.incident.quiet_since, Some(T0 + 4 * MIN));
    assert_eq!(e.next_due(), Some(T0 + 9 * MIN));
    assert!(e.tick(T0 + 9 * MIN - 1).is_empty());
    let done = e.tick(T0 + 9 * MIN);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].incident.status, Status::Resolved);
    assert_eq!(done[0].incident.resolved_at, Some(T0 + 9 * MIN));
    assert_eq!(done[0].announce, Some(Announcement::Resolved));
    assert_eq!(e.open_count(), 0);
    // The same alert firing again later opens a new incident.
    let again = e
        .alert(
            "{}:{service=\"api\"}",
            &firing(&a, T0 + 20 * MIN),
            T0 + 20 * MIN,
        )
        .expect("opens again");
    assert_eq!(again.incident.id, 2);
}

#[test]
fn a_refiring_alert_during_the_quiet_period_keeps_the_incident_open() {
    let mut e = engine();
    let a = api_errors();
    e.alert("k", &firing(&a, T0), T0);
    e.alert("k", &resolved(&a, T0, T0 + MIN), T0 + MIN);
    let c = e
        .alert("k", &firing(&a, T0 + 3 * MIN), T0 + 3 * MIN)
        .expect("refires");
    assert_eq!(c.incident.id, 1);
    assert_eq!(c.incident.quiet_since, None);
    assert!(e.tick(T0 + 30 * MIN).is_empty());
}

#[test]
fn severity_follows_the_worst_alert_until_a_person_sets_it() {
    let mut e = engine();
    let a = api_errors();
    let mut crit = a.clone();
    crit.insert("severity".into(), "critical".into());
    crit.insert("instance".into(), "web-9".into());
    e.alert("k", &firing(&a, T0), T0);
    let c = e.alert("k", &firing(&crit, T0), T0 + MIN).expect("joins");
    assert_eq!(c.incident.severity, Severity::Sev1);
    assert!(
        c.entries
            .iter()
            .any(|x| x.kind == EntryKind::SeverityChanged)
    );
    let current = c.incident.clone();
    let c = e
        .apply(
            current,
            Op::Severity(Severity::Sev2),
            "user:ann",
            T0 + 2 * MIN,
        )
        .expect("set");
    assert_eq!(c.incident.severity, Severity::Sev2);
    let mut crit2 = crit.clone();
    crit2.insert("instance".into(), "web-10".into());
    let c = e
        .alert("k", &firing(&crit2, T0), T0 + 3 * MIN)
        .expect("joins");
    assert_eq!(c.incident.severity, Severity::Sev2, "pinned by a person");
}

#[test]
fn severity_labels_map_to_sev_levels() {
    assert_eq!(Severity::from_label(Some("critical")), Severity::Sev1);
    assert_eq!(Severity::from_label(Some("Error")), Severity::Sev2);
    assert_eq!(Severity::from_label(Some("warning")), Severity::Sev3);
    assert_eq!(Severity::from_label(Some("info")), Severity::Sev4);
    assert_eq!(Severity::from_label(None), Severity::Sev4);
}

#[test]
fn manual_states_and_their_conflicts() {
    let mut e = engine();
    let a = api_errors();
    let i = e.alert("k", &firing(&a, T0), T0).expect("opens").incident;
    let c = e
        .apply(i.clone(), Op::Acknowledge, "user:ann", T0 + MIN)
        .expect("ack");
    assert_eq!(c.incident.status, Status::Acknowledged);
    assert_eq!(c.incident.acknowledged_at, Some(T0 + MIN));
    assert_eq!(c.announce, Some(Announcement::Acknowledged));
    // Acknowledging again is a no-op.
    let again = e
        .apply(i.clone(), Op::Acknowledge, "user:bob", T0 + 2 * MIN)
        .expect("no-op");
    assert!(again.entries.is_empty());
    assert_eq!(again.incident.acknowledged_at, Some(T0 + MIN));
    let c = e
        .apply(i.clone(), Op::Mitigate(None), "user:ann", T0 + 3 * MIN)
        .expect("mitigate");
    assert_eq!(c.incident.mitigated_at, Some(T0 + 3 * MIN));
    assert!(matches!(
        e.apply(i.clone(), Op::Note("  ".into()), "user:ann", T0),
        Err(OpError::Invalid { .. })
    ));
    let c = e
        .apply(i.clone(), Op::Resolve, "user:ann", T0 + 4 * MIN)
        .expect("resolve");
    assert_eq!(c.incident.status, Status::Resolved);
    assert_eq!(c.announce, Some(Announcement::Resolved));
    assert!(c.entries[0].message.contains("still fire"));
    let resolved_incident = c.incident.clone();
    assert!(matches!(
        e.apply(
            resolved_incident.clone(),
            Op::Acknowledge,
            "user:ann",
            T0 + 5 * MIN
        ),
        Err(OpError::Conflict(_))
    ));
    assert!(matches!(
        e.apply(
            resolved_incident.clone(),
            Op::Mitigate(None),
            "user:ann",
            T0 + 5 * MIN
        ),
        Err(OpError::Conflict(_))
    ));
    // Notes still go on a resolved incident (post-mortems come later).
    let c = e
        .apply(
            resolved_incident,
            Op::Note("root cause: config".into()),
            "user:ann",
            T0 + 6 * MIN,
        )
        .expect("note");
    assert_eq!(c.entries[0].kind, EntryKind::Note);
    // The alert still firing at the manual resolution does not reopen anything...
    assert!(e.alert("k", &firing(&a, T0), T0 + 7 * MIN).is_none());
    // ...but a new firing episode does.
    e.alert("k", &resolved(&a, T0, T0 + 8 * MIN), T0 + 8 * MIN);
    let c = e
        .alert("k", &firing(&a, T0 + 9 * MIN), T0 + 9 * MIN)
        .expect("opens");
    assert_eq!(c.incident.id, 2);
}

#[test]
fn the_latest_recent_successful_deployment_is_suspected() {
    let mut e = Engine::new(
        Policy::default(),
        1,
        Vec::new(),
        vec![
            deploy("old", T0 - 3 * 60 * MIN),
            deploy("d1", T0 - 30 * MIN),
            DeploymentMark {
                success: false,
                ..deploy("failed", T0 - 10 * MIN)
            },
            DeploymentMark {
                service: "web".into(),
                ..deploy("other", T0 - 5 * MIN)
            },
            DeploymentMark {
                is_rollback: true,
                ..deploy("rollback", T0 - 2 * MIN)
            },
        ],
    );
    let c = e.alert("k", &firing(&api_errors(), T0), T0).expect("opens");
    assert_eq!(c.incident.deployments.len(), 1);
    assert_eq!(c.incident.deployments[0].deployment_id, "d1");
    assert_eq!(c.incident.deployments[0].kind, LinkKind::Suspected);
    assert!(
        c.entries
            .iter()
            .any(|x| x.kind == EntryKind::DeploymentSuspected)
    );
    // Confirming turns the link into a confirmed one; unlinking removes it.
    let i = c.incident.clone();
    let c = e
        .apply(i.clone(), Op::Link("d1".into()), "user:ann", T0 + MIN)
        .expect("link");
    assert_eq!(c.incident.deployments[0].kind, LinkKind::Confirmed);
    let c = e
        .apply(i.clone(), Op::Unlink("d1".into()), "user:ann", T0 + 2 * MIN)
        .expect("unlink");
    assert!(c.incident.deployments.is_empty());
    assert!(matches!(
        e.apply(i, Op::Unlink("d1".into()), "user:ann", T0 + 3 * MIN),
        Err(OpError::Invalid { .. })
    ));
}

#[test]
fn a_deployment_outside_the_window_is_not_suspected() {
    let mut e = Engine::new(
        Policy::default(),
        1,
        Vec::new(),
        vec![deploy("d0", T0 - 121 * MIN)],
    );
    let c = e.alert("k", &firing(&api_errors(), T0), T0).expect("opens");
    assert!(c.incident.deployments.is_empty());
}

#[test]
fn group_by_overrides_the_route_key() {
    let mut e = Engine::new(
        Policy {
            group_by: Some(vec!["service".into(), "environment".into()]),
            ..Policy::default()
        },
        1,
        Vec::new(),
        Vec::new(),
    );
    let a = api_errors();
    let mut other_alert = a.clone();
    other_alert.insert("alertname".into(), "HighLatency".into());
    e.alert("route-a", &firing(&a, T0), T0);
    let c = e
        .alert("route-b", &firing(&other_alert, T0), T0)
        .expect("joins");
    assert_eq!(c.incident.id, 1);
    assert_eq!(c.incident.key, "by:{environment=\"prod\", service=\"api\"}");
}

#[test]
fn incident_announcements_are_never_incidents() {
    let mut e = engine();
    let mut l = api_errors();
    l.insert(crate::incident::manager::INCIDENT_LABEL.into(), "7".into());
    assert!(e.alert("k", &firing(&l, T0), T0).is_none());
}

#[test]
fn reports_validate_times_and_import_history() {
    let mut e = engine();
    let bad = NewIncident {
        title: "checkout down".into(),
        opened_at: Some(T0),
        resolved_at: Some(T0 - MIN),
        ..NewIncident::default()
    };
    let err = e
        .report(bad, None, "user:ann", T0 + 60 * MIN)
        .expect_err("refused");
    assert_eq!(
        err,
        OpError::Invalid {
            field: "resolved_at".into(),
            problem: "is before opened_at".into()
        }
    );
    let future = NewIncident {
        title: "x".into(),
        opened_at: Some(T0 + 60 * MIN),
        ..NewIncident::default()
    };
    assert!(e.report(future, None, "user:ann", T0).is_err());
    let imported = NewIncident {
        title: "checkout down".into(),
        service: "api".into(),
        environment: "prod".into(),
        severity: Some(Severity::Sev1),
        opened_at: Some(T0),
        acknowledged_at: Some(T0 + MIN),
        mitigated_at: Some(T0 + 5 * MIN),
        resolved_at: Some(T0 + 10 * MIN),
        deployments: vec!["d1".into()],
        ..NewIncident::default()
    };
    let c = e
        .report(imported, None, "user:ann", T0 + 60 * MIN)
        .expect("imported");
    assert_eq!(c.incident.status, Status::Resolved);
    assert_eq!(c.announce, None, "history is not news");
    assert_eq!(c.incident.deployments[0].kind, LinkKind::Confirmed);
    let times: Vec<i64> = c.entries.iter().map(|x| x.at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert_eq!(e.open_count(), 0);
    // A live report is open, announced, not joinable by alerts, and suspects a deployment.
    let live = NewIncident {
        title: "users report errors".into(),
        service: "api".into(),
        environment: "prod".into(),
        ..NewIncident::default()
    };
    let c = e
        .report(
            live,
            Some(deploy("d2", T0 + 50 * MIN)),
            "user:bob",
            T0 + 60 * MIN,
        )
        .expect("reported");
    assert_eq!(c.announce, Some(Announcement::Opened));
    assert_eq!(c.incident.deployments[0].kind, LinkKind::Suspected);
    assert_eq!(c.incident.key, format!("user:{}", c.incident.id));
    let opened = e
        .alert("k", &firing(&api_errors(), T0 + 61 * MIN), T0 + 61 * MIN)
        .expect("opens");
    assert_ne!(opened.incident.id, c.incident.id);
}

#[test]
fn deployments_and_notes_reach_the_incidents_they_concern() {
    let mut e = engine();
    let i = e
        .alert("k", &firing(&api_errors(), T0), T0)
        .expect("opens")
        .incident;
    let changes = e.deployment(deploy("d9", T0 + MIN), T0 + MIN);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].entries[0].kind, EntryKind::Deployment);
    let mut other = deploy("d10", T0 + MIN);
    other.service = "web".into();
    assert!(e.deployment(other, T0 + MIN).is_empty());
    let fp = format!("{:016x}", crate::notify::fingerprint(&api_errors()));
    assert_eq!(e.incidents_of_alerts([fp.as_str()]), vec![i.id]);
    let series = labels(&[("__name__", "anomaly_score"), ("host_name", "web-1")]);
    assert_eq!(e.incidents_of_series(&series), vec![i.id], "same host");
    let series = labels(&[("__name__", "x"), ("host_name", "db-1")]);
    assert!(e.incidents_of_series(&series).is_empty());
    let series = labels(&[("__name__", "x"), ("instance", "web-1")]);
    assert_eq!(e.incidents_of_series(&series), vec![i.id]);
    let series = labels(&[("__name__", "x"), ("service_name", "api")]);
    assert_eq!(e.incidents_of_series(&series), vec![i.id]);
}

#[test]
fn open_incidents_survive_a_restart() {
    let mut e = engine();
    let a = api_errors();
    let i = e.alert("k", &firing(&a, T0), T0).expect("opens").incident;
    let json = serde_json::to_string(&i).expect("serialises");
    let back: Incident = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, i);
    let mut restarted = Engine::new(Policy::default(), 1, vec![back], Vec::new());
    assert!(
        restarted.alert("k", &firing(&a, T0), T0 + MIN).is_none(),
        "known member"
    );
    let c = restarted
        .alert("k", &resolved(&a, T0, T0 + 2 * MIN), T0 + 2 * MIN)
        .expect("resolves");
    assert_eq!(c.incident.id, i.id);
    let mut b = a.clone();
    b.insert("instance".into(), "web-3".into());
    let c = restarted
        .alert("other-key", &firing(&b, T0), T0 + 3 * MIN)
        .expect("opens");
    assert_eq!(c.incident.id, 2, "ids continue after the loaded ones");
}
