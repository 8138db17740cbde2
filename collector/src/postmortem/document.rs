//! The content of the Markdown and HTML post-mortems, built once from the `Input` as a small
//! tree of blocks so the two files say the same thing. Every string in the tree is plain,
//! unescaped text: the renderers (`markdown`, `html`) escape it for their own syntax.

use std::collections::BTreeSet;

use super::{
    Input, KeyMoments, LinkedDeployment, Moment, human_duration, human_seconds, is_fix,
    key_moments, link_str, outcome_str, rfc3339, series_name,
};
use crate::incident::{EntryKind, LinkKind, Source, Status, TimelineEntry};
use crate::verify::{Analysis, Direction, Outcome, Summary};

/// A run of text with one style.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Inline {
    Text(String),
    Strong(String),
    Em(String),
    /// Identifiers and queries: monospace.
    Code(String),
    /// An RFC 3339 time (HTML: `<time>`, kept on one line).
    Time(String),
}

/// A paragraph, a list item or a table cell.
pub(super) type Line = Vec<Inline>;

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Row {
    /// A stable anchor (`entry-12`), for the HTML file.
    pub id: Option<String>,
    /// A milestone row: shown in bold.
    pub strong: bool,
    pub cells: Vec<Line>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Table {
    /// What the table holds (HTML `<caption>`).
    pub caption: String,
    /// Whether Markdown shows the caption too (it has no captions; a table right under a
    /// heading that says the same does without).
    pub md_caption: bool,
    pub head: Vec<String>,
    /// Whether each row's first cell heads the row (`<th scope="row">`).
    pub row_headers: bool,
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Block {
    /// Levels 2 and 3 (the title is level 1); `id` is unique in the document.
    Heading {
        level: u8,
        id: String,
        text: String,
    },
    Para(Line),
    List(Vec<Line>),
    Table(Table),
    /// Where the HTML file draws its chart (Markdown has none).
    Chart,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Document {
    pub title: String,
    /// Under the title: what the document is and when it was generated.
    pub byline: Line,
    pub blocks: Vec<Block>,
}

impl Document {
    /// The level-2 headings with their ids, for the HTML file's table of contents.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &str)> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Heading { level: 2, id, text } => Some((id.as_str(), text.as_str())),
            _ => None,
        })
    }
}

pub(super) const TO_BE_WRITTEN: &str = "To be written.";

fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn strong(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

fn em(s: impl Into<String>) -> Inline {
    Inline::Em(s.into())
}

fn code(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

fn time(ms: i64) -> Inline {
    Inline::Time(rfc3339(ms))
}

fn time_cell(ms: i64) -> Line {
    vec![time(ms)]
}

fn cell(s: impl Into<String>) -> Line {
    vec![text(s)]
}

fn blank() -> Block {
    Block::Para(vec![em(TO_BE_WRITTEN)])
}

fn duration_or_unknown(ms: Option<i64>) -> String {
    ms.map(human_duration)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `+3m` or `-2m 30s` relative to detection.
fn offset(ms: i64) -> String {
    if ms > 0 {
        format!("+{}", human_duration(ms))
    } else {
        human_duration(ms)
    }
}

fn source_str(s: Source) -> &'static str {
    match s {
        Source::Alert => "opened by an alert",
        Source::User => "reported by a person",
    }
}

fn status_str(s: Status) -> &'static str {
    s.as_str()
}

/// Builds the document; headings get unique ids as they are added.
struct Builder {
    blocks: Vec<Block>,
    ids: BTreeSet<String>,
}

impl Builder {
    fn heading(&mut self, level: u8, text: impl Into<String>) {
        let text = text.into();
        let id = unique_id(&mut self.ids, &slug(&text));
        self.blocks.push(Block::Heading { level, id, text });
    }

    fn para(&mut self, line: Line) {
        self.blocks.push(Block::Para(line));
    }

    fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

/// Lower-case ASCII letters and digits, other runs as `-`: an HTML id from any text.
pub(super) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "section".to_owned()
    } else {
        out.to_owned()
    }
}

/// `base`, or `base-2`, `base-3`, … when taken.
pub(super) fn unique_id(taken: &mut BTreeSet<String>, base: &str) -> String {
    let mut id = base.to_owned();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    taken.insert(id.clone());
    id
}

/// The document for `input`.
pub(super) fn build(input: &Input) -> Document {
    let moments = key_moments(input);
    let i = &input.incident;
    let mut b = Builder {
        blocks: Vec::new(),
        ids: BTreeSet::new(),
    };
    // Ids the HTML file uses outside the blocks.
    for reserved in ["top", "content", "chart-title", "chart-desc"] {
        b.ids.insert(reserved.to_owned());
    }
    let title = if i.title.trim().is_empty() {
        format!("Post-mortem: incident {}", i.id)
    } else {
        format!("Post-mortem: incident {}, {}", i.id, i.title)
    };
    let byline = vec![text(format!(
        "Generated by Redline at {} from the incident's record, timeline, linked deployments and series. \
         Sections marked “{TO_BE_WRITTEN}” are for people to fill in.",
        rfc3339(input.generated_at)
    ))];

    b.heading(2, "Incident");
    b.push(Block::Table(header_table(input)));

    b.heading(2, "Key moments");
    b.push(Block::Table(moments_table(&moments)));
    b.push(Block::Chart);

    b.heading(2, "Timeline");
    timeline(&mut b, input);

    b.heading(2, "Change");
    change(&mut b, input);

    b.heading(2, "What moved first");
    leads(&mut b, input, &moments);

    b.heading(2, "Summary");
    summary(&mut b, input, &moments);

    b.heading(2, "Impact");
    impact(&mut b, input, &moments);

    b.heading(2, "Root causes");
    root_causes(&mut b, input);

    b.heading(2, "Trigger");
    trigger(&mut b, input);

    b.heading(2, "Resolution");
    resolution(&mut b, input);

    b.heading(2, "Detection");
    detection(&mut b, input, &moments);

    b.heading(2, "Action items");
    b.push(Block::Table(Table {
        caption: "Action items (type: mitigate, prevent or process)".to_owned(),
        md_caption: true,
        head: ["Action item", "Type", "Owner", "Tracking issue", "Status"]
            .map(str::to_owned)
            .to_vec(),
        row_headers: false,
        rows: (0..3)
            .map(|_| Row {
                id: None,
                strong: false,
                cells: vec![Vec::new(); 5],
            })
            .collect(),
    }));

    b.heading(2, "Lessons learned");
    for h in ["What went well", "What went wrong", "Where we got lucky"] {
        b.heading(3, h);
        b.push(blank());
    }

    Document {
        title,
        byline,
        blocks: b.blocks,
    }
}

fn header_table(input: &Input) -> Table {
    let i = &input.incident;
    let hosts = i.hosts.iter().cloned().collect::<Vec<_>>().join(", ");
    let none = || "none".to_owned();
    let non_empty = |s: &str| {
        if s.trim().is_empty() {
            none()
        } else {
            s.to_owned()
        }
    };
    let rows: Vec<(&str, Line)> = vec![
        ("Incident", vec![code(i.id.to_string())]),
        ("Title", cell(non_empty(&i.title))),
        ("Status", vec![strong(status_str(i.status))]),
        ("Severity", vec![strong(i.severity.as_str())]),
        ("Service", cell(non_empty(&i.service))),
        ("Environment", cell(non_empty(&i.environment))),
        ("Hosts", cell(if hosts.is_empty() { none() } else { hosts })),
        (
            "Owner",
            cell(i.owner.clone().unwrap_or_else(|| "nobody".to_owned())),
        ),
        ("Source", cell(source_str(i.source))),
        ("Deduplication key", vec![code(i.key.clone())]),
        ("Alerts", cell(i.alerts.len().to_string())),
        ("Generated at", time_cell(input.generated_at)),
    ];
    Table {
        caption: format!("Incident {} at a glance", i.id),
        md_caption: false,
        head: vec!["Field".to_owned(), "Value".to_owned()],
        row_headers: true,
        rows: rows
            .into_iter()
            .map(|(name, value)| Row {
                id: None,
                strong: false,
                cells: vec![cell(name), value],
            })
            .collect(),
    }
}

fn moments_table(m: &KeyMoments) -> Table {
    let mut rows: Vec<Row> = Moment::ALL
        .iter()
        .map(|&moment| {
            let (measure, duration) = match m.duration_to(moment) {
                Some((name, d)) => (name.to_owned(), duration_or_unknown(d)),
                None => (String::new(), String::new()),
            };
            Row {
                id: None,
                strong: false,
                cells: vec![
                    cell(moment.label()),
                    m.at(moment)
                        .map(time_cell)
                        .unwrap_or_else(|| cell("unknown")),
                    cell(measure),
                    cell(duration),
                ],
            }
        })
        .collect();
    rows.push(Row {
        id: None,
        strong: false,
        cells: vec![
            cell("Failed deployment recovered"),
            Vec::new(),
            cell("Failed deployment recovery time"),
            cell(
                m.failed_deployment_recovery_seconds
                    .map(human_seconds)
                    .unwrap_or_else(|| "unknown".to_owned()),
            ),
        ],
    });
    Table {
        caption: "Key moments (UTC) and the durations that end at each".to_owned(),
        md_caption: false,
        head: ["Moment", "Time (UTC)", "Measure", "Duration"]
            .map(str::to_owned)
            .to_vec(),
        row_headers: true,
        rows,
    }
}

/// The timeline in time order (stable for equal times).
pub(super) fn sorted_timeline(input: &Input) -> Vec<&TimelineEntry> {
    let mut entries: Vec<&TimelineEntry> = input.timeline.iter().collect();
    entries.sort_by_key(|e| e.at);
    entries
}

fn kind_label(kind: EntryKind) -> String {
    kind.as_str().replace('_', " ")
}

fn timeline(b: &mut Builder, input: &Input) {
    let entries = sorted_timeline(input);
    if entries.is_empty() {
        b.para(vec![text("The timeline is empty.")]);
        return;
    }
    b.para(vec![
        text("Milestones are marked ◆ and shown in bold. Offsets are from detection ("),
        text(rfc3339(input.incident.opened_at)),
        text(")."),
    ]);
    let rows = entries
        .iter()
        .map(|e| {
            let milestone = Moment::of_entry(e.kind);
            let id = (e.id != 0).then(|| e.id.to_string());
            Row {
                id: id.as_ref().map(|id| format!("entry-{id}")),
                strong: milestone.is_some(),
                cells: vec![
                    cell(id.unwrap_or_default()),
                    time_cell(e.at),
                    cell(offset(e.at - input.incident.opened_at)),
                    cell(
                        milestone
                            .map(|m| format!("◆ {}", m.label()))
                            .unwrap_or_default(),
                    ),
                    cell(kind_label(e.kind)),
                    cell(e.actor.clone()),
                    cell(e.message.clone()),
                ],
            }
        })
        .collect();
    b.push(Block::Table(Table {
        caption: format!("Timeline of incident {}", input.incident.id),
        md_caption: false,
        head: [
            "Entry",
            "Time (UTC)",
            "Since detection",
            "Milestone",
            "Event",
            "By",
            "Details",
        ]
        .map(str::to_owned)
        .to_vec(),
        row_headers: false,
        rows,
    }));
}

fn change(b: &mut Builder, input: &Input) {
    if input.deployments.is_empty() {
        b.para(vec![text("No deployment is linked to this incident.")]);
        return;
    }
    for d in &input.deployments {
        deployment(b, input, d);
    }
}

fn deployment(b: &mut Builder, input: &Input, linked: &LinkedDeployment) {
    let d = &linked.deployment;
    b.heading(3, format!("Deployment {}", d.id));
    let link = match linked.link {
        LinkKind::Suspected => "suspected (linked automatically)",
        LinkKind::Confirmed => "confirmed (linked by a person)",
    };
    let role = if is_fix(input, linked) {
        "fix"
    } else {
        "possible cause"
    };
    let mut rows: Vec<(&str, Line)> = vec![
        ("Deployment", vec![code(d.id.clone())]),
        ("Service", cell(d.service.clone())),
        ("Environment", cell(d.environment.clone())),
        (
            "Version",
            if d.version.is_empty() {
                cell("unknown")
            } else {
                vec![code(d.version.clone())]
            },
        ),
        ("Status", cell(d.status.as_str())),
        ("Started", time_cell(d.started_at)),
        ("Finished", time_cell(d.finished_at)),
        (
            "Relative to detection",
            cell(before_or_after_detection(
                input.incident.opened_at - d.finished_at,
            )),
        ),
        ("Link", cell(link)),
        ("Role", cell(role)),
    ];
    if let Some(r) = &d.rollback_of {
        rows.push(("Rollback of", vec![code(r.clone())]));
    }
    if let Some(f) = d.fixes_incident {
        rows.push(("Fixes incident", vec![code(f.to_string())]));
    }
    rows.push(("Recorded by", cell(d.source.clone())));
    b.push(Block::Table(Table {
        caption: format!("Deployment {}", d.id),
        md_caption: false,
        head: vec!["Field".to_owned(), "Value".to_owned()],
        row_headers: true,
        rows: rows
            .into_iter()
            .map(|(name, value)| Row {
                id: None,
                strong: false,
                cells: vec![cell(name), value],
            })
            .collect(),
    }));

    if d.commits.is_empty() {
        b.para(vec![text("No commits were recorded for this deployment.")]);
    } else {
        b.push(Block::Table(Table {
            caption: format!("Commits of deployment {}", d.id),
            md_caption: true,
            head: vec!["Commit".to_owned(), "Committed at (UTC)".to_owned()],
            row_headers: false,
            rows: d
                .commits
                .iter()
                .map(|c| Row {
                    id: None,
                    strong: false,
                    cells: vec![vec![code(c.sha.clone())], time_cell(c.committed_at)],
                })
                .collect(),
        }));
    }

    if linked.analyses.is_empty() {
        b.para(vec![text(
            "No verification analyses were recorded for this deployment.",
        )]);
    } else {
        b.push(Block::Table(analyses_table(
            d.id.as_str(),
            &linked.analyses,
        )));
    }
    b.para(match linked.verdict {
        Some(v) => vec![
            text("Verification verdict: "),
            strong(outcome_str(v).to_uppercase()),
            text("."),
        ],
        None => vec![text("Verification verdict: none reached.")],
    });
    if !linked.analyses.is_empty() {
        let mut queries: Vec<(&str, &str)> = linked
            .analyses
            .iter()
            .map(|a| (a.indicator.as_str(), a.query.as_str()))
            .collect();
        queries.sort_unstable();
        queries.dedup();
        b.para(vec![text("The indicators' queries:")]);
        b.push(Block::List(
            queries
                .into_iter()
                .map(|(indicator, query)| vec![text(format!("{indicator}: ")), code(query)])
                .collect(),
        ));
    }
}

/// `5m before detection`, `2m after detection` or `at detection`, given detection − time.
fn before_or_after_detection(before: i64) -> String {
    match before.cmp(&0) {
        std::cmp::Ordering::Greater => format!("{} before detection", human_duration(before)),
        std::cmp::Ordering::Equal => "at detection".to_owned(),
        std::cmp::Ordering::Less => format!("{} after detection", human_duration(-before)),
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let s = format!("{v:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".to_owned()
            } else {
                s.to_owned()
            }
        }
        _ => "n/a".to_owned(),
    }
}

fn summary_cell(s: &Summary) -> String {
    // No-break spaces: the count stays with its median.
    format!("{}\u{a0}(n\u{a0}=\u{a0}{})", number(s.median), s.count)
}

fn analyses_table(deployment: &str, analyses: &[Analysis]) -> Table {
    let rows = analyses
        .iter()
        .map(|a| {
            let direction = match a.direction {
                Direction::HigherIsWorse => "higher is worse",
                Direction::LowerIsWorse => "lower is worse",
            };
            let effect = match a.effect {
                Some(e) if e.is_finite() => format!("{:+.1}%", e * 100.0),
                _ => "n/a".to_owned(),
            };
            let outcome = outcome_str(a.outcome);
            Row {
                id: None,
                strong: false,
                cells: vec![
                    cell(a.sequence.to_string()),
                    time_cell(a.at),
                    cell(format!("{} ({direction})", a.indicator)),
                    cell(summary_cell(&a.baseline)),
                    cell(summary_cell(&a.analysis)),
                    cell(effect),
                    cell(number(a.p_value)),
                    if a.outcome == Outcome::Fail {
                        vec![strong(outcome)]
                    } else {
                        cell(outcome)
                    },
                    cell(a.consecutive_failures.to_string()),
                    cell(a.reason.clone()),
                ],
            }
        })
        .collect();
    Table {
        caption: format!("Verification analyses of deployment {deployment}, in time order"),
        md_caption: true,
        head: [
            "Run",
            "Time (UTC)",
            "Indicator",
            "Baseline median",
            "Analysis median",
            "Effect",
            "p-value",
            "Outcome",
            "Failures in a row",
            "Reason",
        ]
        .map(str::to_owned)
        .to_vec(),
        row_headers: false,
        rows,
    }
}

fn leads(b: &mut Builder, input: &Input, m: &KeyMoments) {
    if input.leads.is_empty() {
        b.para(vec![text(
            "No series was anomalous in the hour before detection.",
        )]);
        return;
    }
    b.para(vec![text(
        "Series whose anomaly score reached the threshold in the hour before detection, earliest first: leads for the root cause, not conclusions.",
    )]);
    let rows = input
        .leads
        .iter()
        .enumerate()
        .map(|(n, l)| Row {
            id: None,
            strong: false,
            cells: vec![
                cell((n + 1).to_string()),
                vec![code(series_name(&l.series))],
                time_cell(l.first_anomalous_at),
                cell(human_duration(m.detected - l.first_anomalous_at)),
                cell(number(Some(l.peak_score))),
            ],
        })
        .collect();
    b.push(Block::Table(Table {
        caption: "Leads: series that moved first, ranked".to_owned(),
        md_caption: false,
        head: [
            "Rank",
            "Series",
            "First anomalous (UTC)",
            "Before detection",
            "Peak score",
        ]
        .map(str::to_owned)
        .to_vec(),
        row_headers: false,
        rows,
    }));
}

/// `"service" in "environment"`, or what is known of it.
fn where_(input: &Input) -> String {
    let i = &input.incident;
    match (i.service.trim().is_empty(), i.environment.trim().is_empty()) {
        (false, false) => format!("{} in {}", i.service, i.environment),
        (false, true) => i.service.clone(),
        (true, false) => format!("an unnamed service in {}", i.environment),
        (true, true) => "an unnamed service".to_owned(),
    }
}

fn summary(b: &mut Builder, input: &Input, m: &KeyMoments) {
    let i = &input.incident;
    let state = match (m.resolved, m.time_to_resolve_ms) {
        (Some(at), Some(d)) => format!(
            "It was resolved at {}, {} after impact began.",
            rfc3339(at),
            human_duration(d)
        ),
        _ => format!(
            "It was still {} when this document was generated ({}).",
            status_str(i.status),
            rfc3339(input.generated_at)
        ),
    };
    b.para(vec![text(format!(
        "{} incident “{}” on {}, {}, detected at {}. {state}",
        i.severity.as_str(),
        i.title,
        where_(input),
        source_str(i.source),
        rfc3339(m.detected)
    ))]);
    b.push(blank());
}

fn impact(b: &mut Builder, input: &Input, m: &KeyMoments) {
    let i = &input.incident;
    let mut facts = Vec::new();
    match m.impact_start {
        Some(start) => {
            let end = m
                .mitigated
                .map(|t| (t, "mitigation"))
                .or(m.resolved.map(|t| (t, "resolution")));
            facts.push(vec![text(match end {
                Some((t, what)) => format!(
                    "Impact started at {} and lasted {} until {what}.",
                    rfc3339(start),
                    human_duration(t - start)
                ),
                None => format!(
                    "Impact started at {} and had not been mitigated when this document was generated.",
                    rfc3339(start)
                ),
            })]);
        }
        None => facts.push(vec![text("The impact start is unknown.")]),
    }
    if !i.hosts.is_empty() {
        facts.push(vec![text(format!(
            "Hosts: {}.",
            i.hosts.iter().cloned().collect::<Vec<_>>().join(", ")
        ))]);
    }
    let mut alerts: Vec<_> = i.alerts.values().collect();
    alerts.sort_by_key(|a| a.starts_at);
    for a in alerts {
        let until = match a.ends_at {
            Some(t) => format!("until {}", rfc3339(t)),
            None if a.firing => "still firing".to_owned(),
            None => "end unknown".to_owned(),
        };
        facts.push(vec![
            text("Alert "),
            code(series_name_alert(&a.labels)),
            text(format!(" firing from {}, {until}.", rfc3339(a.starts_at))),
        ]);
    }
    b.push(Block::List(facts));
    b.para(vec![text("User impact: "), em(TO_BE_WRITTEN)]);
}

/// An alert's labels as `AlertName{label="value", …}`.
fn series_name_alert(labels: &crate::notify::LabelSet) -> String {
    let mut l = labels.clone();
    if let Some(name) = l.remove("alertname") {
        l.insert("__name__".to_owned(), name);
    }
    series_name(&l)
}

fn causes(input: &Input) -> impl Iterator<Item = &LinkedDeployment> {
    input.deployments.iter().filter(|d| !is_fix(input, d))
}

fn root_causes(b: &mut Builder, input: &Input) {
    for d in causes(input).filter(|d| d.link == LinkKind::Confirmed) {
        b.para(vec![text(format!(
            "Deployment {} ({}) is confirmed as the cause; what in it caused the incident is to be written below.",
            d.deployment.id,
            version_or_unknown(&d.deployment.version)
        ))]);
    }
    b.push(blank());
}

fn version_or_unknown(v: &str) -> String {
    if v.is_empty() {
        "version unknown".to_owned()
    } else {
        format!("version {v}")
    }
}

fn trigger(b: &mut Builder, input: &Input) {
    let mut any = false;
    for d in causes(input) {
        any = true;
        let dep = &d.deployment;
        let when = before_or_after_detection(input.incident.opened_at - dep.finished_at);
        let verdict = match d.verdict {
            Some(v) => format!("Its verification verdict was {}.", outcome_str(v)),
            None => "Its verification reached no verdict.".to_owned(),
        };
        b.para(vec![text(format!(
            "Deployment {} of {} in {} ({}), finished at {} ({when}), is the {} trigger. {verdict}",
            dep.id,
            dep.service,
            dep.environment,
            version_or_unknown(&dep.version),
            rfc3339(dep.finished_at),
            link_str(d.link),
        ))]);
    }
    if !any {
        b.push(blank());
    }
}

fn resolution(b: &mut Builder, input: &Input) {
    let i = &input.incident;
    let mut items: Vec<Line> = Vec::new();
    let mut listed = BTreeSet::new();
    for d in input.deployments.iter().filter(|d| is_fix(input, d)) {
        let dep = &d.deployment;
        listed.insert(dep.id.clone());
        let what = match &dep.rollback_of {
            Some(r) => format!("a rollback of {r}"),
            None => "which fixes this incident".to_owned(),
        };
        items.push(vec![text(format!(
            "Deployment {} ({}), {what}, finished at {} ({}).",
            dep.id,
            version_or_unknown(&dep.version),
            rfc3339(dep.finished_at),
            dep.status.as_str()
        ))]);
    }
    let causes: BTreeSet<&str> = causes(input).map(|d| d.deployment.id.as_str()).collect();
    for e in sorted_timeline(input) {
        let during = e.at >= i.opened_at && i.resolved_at.is_none_or(|r| e.at <= r);
        match e.kind {
            EntryKind::Deployment if during => {
                let id = e.refs.get("deployment").cloned().unwrap_or_default();
                if causes.contains(id.as_str()) || !listed.insert(id) {
                    continue;
                }
                items.push(vec![text(format!(
                    "At {}, a deployment during the incident: {}",
                    rfc3339(e.at),
                    e.message
                ))]);
            }
            EntryKind::Mitigated => items.push(vec![text(format!(
                "Marked mitigated at {} by {}.",
                rfc3339(e.at),
                e.actor
            ))]),
            EntryKind::Resolved => {
                let how = if e.actor.starts_with("user:") {
                    "manually "
                } else {
                    ""
                };
                items.push(vec![text(format!(
                    "Resolved {how}at {} by {}: {}",
                    rfc3339(e.at),
                    e.actor,
                    e.message
                ))]);
            }
            _ => {}
        }
    }
    if let (Some(at), false) = (
        i.resolved_at,
        input.timeline.iter().any(|e| e.kind == EntryKind::Resolved),
    ) {
        items.push(vec![text(format!("Resolved at {}.", rfc3339(at)))]);
    }
    if i.resolved_at.is_none() {
        items.push(vec![text(format!(
            "The incident was not resolved when this document was generated ({}).",
            rfc3339(input.generated_at)
        ))]);
    }
    b.push(Block::List(items));
    b.push(blank());
}

fn detection(b: &mut Builder, input: &Input, m: &KeyMoments) {
    let i = &input.incident;
    let opened = input.timeline.iter().find(|e| e.kind == EntryKind::Opened);
    let mut items: Vec<Line> = Vec::new();
    items.push(vec![text(match opened {
        Some(e) => format!("Detected at {}: {}.", rfc3339(m.detected), e.message),
        None => format!(
            "Detected at {} ({}).",
            rfc3339(m.detected),
            source_str(i.source)
        ),
    })]);
    if let Some(first) = i.alerts.values().min_by_key(|a| a.starts_at) {
        items.push(vec![
            text("The first alert, "),
            code(series_name_alert(&first.labels)),
            text(format!(", started firing at {}.", rfc3339(first.starts_at))),
        ]);
    }
    items.push(vec![text(match (m.time_to_detect_ms, m.impact_start) {
        (Some(d), Some(start)) => format!(
            "Time to detect: {} (impact started at {}).",
            human_duration(d),
            rfc3339(start)
        ),
        _ => "Time to detect: unknown (the impact start is unknown).".to_owned(),
    })]);
    if let Some(lead) = input.leads.first() {
        items.push(vec![
            text("The earliest anomaly, on "),
            code(series_name(&lead.series)),
            text(format!(
                ", began at {}, {} before detection.",
                rfc3339(lead.first_anomalous_at),
                human_duration(m.detected - lead.first_anomalous_at)
            )),
        ]);
    }
    b.push(Block::List(items));
}
