//! The rule manager: the one owner of rule groups and their alert state.
//!
//! Lifecycle: `Manager::run` loads the rule files and the persisted alert state, then runs one
//! task per group. Each group task owns its rules' alerts; it evaluates on its interval and,
//! promptly, when samples of a metric it reads were committed (the store's write notifications,
//! debounced), so a threshold crossing with `for: 0s` fires well under a second after the
//! sample was acknowledged. Each evaluation writes recorded series, `ALERTS` /
//! `ALERTS_FOR_STATE` and changed alert state to the store in one transaction, publishes its
//! status for the API, and hands alert transitions on over a bounded channel.
//!
//! Reload (SIGHUP, `POST /-/reload`): the group tasks stop after their current evaluation and
//! hand back their alerts; the files are loaded again; alerts carry over to rules with the same
//! key (file, group, rule name and occurrence), so a reload loses no alert state. Shutdown is
//! the same stop without a new start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::alert::state::{Alert, Alerts, State, Transition};
use crate::config::RulesConfig;
use crate::model::{Labels, SeriesSamples};
use crate::query::Engine;
use crate::rules::{self, Rule, RuleGroup, RuleKind};
use crate::store::{RuleAlertState, Store, WriteBatch};

/// An alert transition with the rule it belongs to, for notification and incident handling.
#[derive(Clone, Debug)]
pub struct AlertEvent {
    pub rule_key: String,
    pub group: String,
    pub transition: Transition,
    /// Where the alert links back to: the rule's expression in the graph view, as
    /// Prometheus' `generatorURL`.
    pub generator_url: String,
}

/// Prometheus' `generatorURL` of a rule: `{external_url}/graph?g0.expr=…&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let expr: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!(
        "{}/graph?g0.expr={expr}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

/// A request to reload the rule files; the reply carries the load errors (empty when clean).
pub struct ReloadRequest {
    /// The rule settings of a reloaded configuration (other paths, interval, debounce,
    /// external labels); `None` reloads the files named by the settings in force.
    pub config: Option<RulesConfig>,
    pub reply: oneshot::Sender<Vec<String>>,
}

/// The state of one rule for the rules API.
#[derive(Clone, Debug)]
pub struct RuleStatus {
    pub rule: Rule,
    pub health: &'static str,
    pub last_error: Option<String>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
    pub alerts: Vec<Alert>,
}

/// The state of one group for the rules API.
#[derive(Clone, Debug)]
pub struct GroupStatus {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub limit: usize,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
    pub rules: Vec<RuleStatus>,
}

/// What the API reads: every group's status and the errors of the last load.
#[derive(Default, Debug)]
pub struct RulesStatus {
    pub groups: Vec<GroupStatus>,
    pub load_errors: Vec<String>,
}

pub type SharedStatus = Arc<RwLock<RulesStatus>>;

/// The key under which a rule's alerts are persisted and carried over a reload.
pub fn rule_key(group: &RuleGroup, rule: &Rule, occurrence: usize) -> String {
    format!(
        "{};{};{};{occurrence}",
        group.file.display(),
        group.name,
        rule.name()
    )
}

/// Keys of all rules of a group, in order (the n-th rule with a given name gets occurrence n).
fn rule_keys(group: &RuleGroup) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    group
        .rules
        .iter()
        .map(|r| {
            let n = seen.entry(r.name()).or_default();
            let key = rule_key(group, r, *n);
            *n += 1;
            key
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Shared by all group tasks.
struct Context {
    store: Store,
    engine: Engine,
    config: RulesConfig,
    status: SharedStatus,
    events: mpsc::Sender<AlertEvent>,
}

pub struct Manager {
    ctx: Arc<Context>,
}

impl Manager {
    pub fn new(
        store: Store,
        engine: Engine,
        config: RulesConfig,
        status: SharedStatus,
        events: mpsc::Sender<AlertEvent>,
    ) -> Manager {
        Manager {
            ctx: Arc::new(Context {
                store,
                engine,
                config,
                status,
                events,
            }),
        }
    }

    /// Loads the rule files, reporting errors; a missing default directory is no error.
    fn load(&self) -> (Vec<RuleGroup>, Vec<String>) {
        let config = &self.ctx.config;
        let paths: Vec<_> = config
            .paths
            .iter()
            .filter(|p| !config.default_paths || p.exists())
            .cloned()
            .collect();
        let loaded = rules::load_paths(&paths);
        let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        for e in &errors {
            tracing::error!(error = %e, "rule not loaded");
        }
        let rules: usize = loaded.groups.iter().map(|g| g.rules.len()).sum();
        tracing::info!(
            groups = loaded.groups.len(),
            rules,
            errors = errors.len(),
            "rules loaded"
        );
        metrics::gauge!("redline_collector_rules_loaded").set(rules as f64);
        metrics::gauge!("redline_collector_rule_load_errors").set(errors.len() as f64);
        (loaded.groups, errors)
    }

    /// Runs until `stop` turns true. Reload requests arrive on `reloads`.
    pub async fn run(
        mut self,
        mut reloads: mpsc::Receiver<ReloadRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut carried: HashMap<String, Alerts> = HashMap::new();
        match self.ctx.store.load_alert_state().await {
            Ok(state) => {
                for rule in state {
                    let alerts: Alerts = rule
                        .alerts
                        .into_iter()
                        .map(|a| (a.labels.clone(), a))
                        .collect();
                    carried.insert(rule.rule_key, alerts);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load persisted alert state; starting empty")
            }
        }
        // A reload request is answered after the files are loaded again.
        let mut pending_reply: Option<oneshot::Sender<Vec<String>>> = None;
        loop {
            let (groups, errors) = self.load();
            if let Some(reply) = pending_reply.take() {
                let _ = reply.send(errors.clone());
            }
            let (gen_stop_tx, gen_stop_rx) = watch::channel(false);
            let mut tasks = Vec::new();
            let mut statuses = Vec::with_capacity(groups.len());
            let mut starts = Vec::with_capacity(groups.len());
            for group in groups {
                let keys = rule_keys(&group);
                let alerts: Vec<Alerts> = keys
                    .iter()
                    .map(|k| carried.remove(k).unwrap_or_default())
                    .collect();
                statuses.push(initial_status(&group, &alerts, &self.ctx.config));
                starts.push((group, keys, alerts));
            }
            {
                // Published before the tasks start, with the carried-over alerts, so the API
                // never shows a reloaded or restarted collector without its alerts.
                let mut status = self.ctx.status.write().unwrap_or_else(|e| e.into_inner());
                status.load_errors = errors.clone();
                status.groups = statuses;
            }
            for (index, (group, keys, alerts)) in starts.into_iter().enumerate() {
                tasks.push(tokio::spawn(run_group(
                    self.ctx.clone(),
                    index,
                    group,
                    keys,
                    alerts,
                    gen_stop_rx.clone(),
                )));
            }
            // Alert state of rules that no longer exist is dropped from the store, so a restart
            // does not resurrect it; their firing alerts resolve now, so receivers hear so.
            let now = now_ms();
            for (rule_key, alerts) in &carried {
                for alert in alerts.values().filter(|a| a.state == State::Firing) {
                    let mut resolved = alert.clone();
                    resolved.state = State::Inactive;
                    resolved.resolved_at = Some(now);
                    let event = AlertEvent {
                        rule_key: rule_key.clone(),
                        group: String::new(),
                        transition: Transition::Resolved(resolved),
                        generator_url: String::new(),
                    };
                    if self.ctx.events.send(event).await.is_err() {
                        metrics::counter!("redline_collector_alert_events_dropped_total")
                            .increment(1);
                    }
                }
            }
            if !carried.is_empty() {
                let batch = WriteBatch {
                    alert_state: carried
                        .drain()
                        .map(|(rule_key, _)| RuleAlertState {
                            rule_key,
                            alerts: Vec::new(),
                        })
                        .collect(),
                    ..WriteBatch::default()
                };
                if let Err(e) = self.ctx.store.write(batch).await {
                    tracing::warn!(error = %e, "cannot forget alert state of removed rules");
                }
            }
            let reply = tokio::select! {
                _ = stopped(&mut stop) => None,
                request = reloads.recv() => request,
            };
            let _ = gen_stop_tx.send(true);
            for task in tasks {
                if let Ok(state) = task.await {
                    carried.extend(state);
                }
            }
            match reply {
                Some(request) => {
                    tracing::info!("reloading rules");
                    metrics::counter!("redline_collector_rule_reloads_total").increment(1);
                    // Every group task has stopped and handed back its alerts, so nothing
                    // else holds the context: the new settings apply to all the groups that
                    // start next.
                    if let Some(config) = request.config {
                        let ctx = &self.ctx;
                        self.ctx = Arc::new(Context {
                            store: ctx.store.clone(),
                            engine: ctx.engine.clone(),
                            config,
                            status: ctx.status.clone(),
                            events: ctx.events.clone(),
                        });
                    }
                    pending_reply = Some(request.reply);
                }
                None => return,
            }
        }
    }
}

fn initial_status(group: &RuleGroup, alerts: &[Alerts], config: &RulesConfig) -> GroupStatus {
    GroupStatus {
        name: group.name.clone(),
        file: group.file.display().to_string(),
        interval: group.interval_or(config.evaluation_interval),
        limit: group.limit,
        last_evaluation_ms: None,
        evaluation_seconds: 0.0,
        rules: group
            .rules
            .iter()
            .zip(alerts)
            .map(|(r, a)| RuleStatus {
                rule: r.clone(),
                health: "unknown",
                last_error: None,
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
                alerts: a
                    .values()
                    .filter(|a| a.state != State::Inactive)
                    .cloned()
                    .collect(),
            })
            .collect(),
    }
}

/// Completes when `stop` turns true (or its sender is gone). The guard `wait_for` returns is
/// dropped here, so callers' futures stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Whether a write notification concerns this group.
fn relevant(names: &Option<BTreeSet<String>>, written: &[String]) -> bool {
    match names {
        None => true,
        Some(names) => written.iter().any(|w| names.contains(w)),
    }
}

/// One group's task: evaluates on its interval and promptly after relevant writes; returns its
/// alerts by rule key when stopped.
async fn run_group(
    ctx: Arc<Context>,
    index: usize,
    group: RuleGroup,
    keys: Vec<String>,
    mut alerts: Vec<Alerts>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(String, Alerts)> {
    // The metric names the group reads; `None` means it reads something without a fixed name,
    // and every write is relevant. Recording rules' own outputs are excluded so a group does
    // not wake itself up.
    let own: BTreeSet<&str> = group.rules.iter().map(|r| r.name()).collect();
    let names: Option<BTreeSet<String>> = group
        .rules
        .iter()
        .map(|r| crate::query::metric_names(&r.expr))
        .try_fold(BTreeSet::new(), |mut acc, n| {
            acc.extend(n?);
            Some(acc)
        })
        .map(|set| {
            set.into_iter()
                .filter(|n| !own.contains(n.as_str()) && n != "ALERTS" && n != "ALERTS_FOR_STATE")
                .collect()
        });
    // Announce the alerts that already fire (carried over a restart or reload), and those that
    // resolved recently (still kept, as Prometheus keeps them for 15 minutes), so the
    // dispatcher knows them before their next transition: it deduplicates what it knew, and a
    // resolution it had not reported before a restart is reported now.
    for (rule, (key, rule_alerts)) in group.rules.iter().zip(keys.iter().zip(&alerts)) {
        for alert in rule_alerts.values() {
            let transition = match alert.state {
                State::Firing => Transition::Fired(alert.clone()),
                State::Inactive if alert.fired_at.is_some() => Transition::Resolved(alert.clone()),
                _ => continue,
            };
            let event = AlertEvent {
                rule_key: key.clone(),
                group: group.name.clone(),
                transition,
                generator_url: generator_url(&ctx.config.external_url, &rule.expr_text),
            };
            if ctx.events.send(event).await.is_err() {
                metrics::counter!("redline_collector_alert_events_dropped_total").increment(1);
            }
        }
    }
    let interval = group.interval_or(ctx.config.evaluation_interval);
    let mut writes = ctx.store.subscribe_writes();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = tick.tick() => {}
            message = writes.recv() => {
                match message {
                    Ok(written) if !relevant(&names, &written) => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        // The store is closing; keep evaluating on the interval only.
                        writes = broadcast::channel(1).1;
                        continue;
                    }
                }
                // Debounce: let writes that arrive together land, then evaluate once.
                tokio::time::sleep(ctx.config.debounce).await;
                while writes.try_recv().is_ok() {}
                metrics::counter!("redline_collector_rule_group_early_evaluations_total").increment(1);
            }
        }
        evaluate_group(&ctx, index, &group, &keys, &mut alerts).await;
    }
    keys.into_iter().zip(alerts).collect()
}

/// One evaluation of every rule of a group at one timestamp, in order; recorded samples are
/// written before the next rule runs so it sees them, as in Prometheus.
async fn evaluate_group(
    ctx: &Context,
    index: usize,
    group: &RuleGroup,
    keys: &[String],
    alerts: &mut [Alerts],
) {
    let started = Instant::now();
    let now = now_ms();
    let mut statuses = Vec::with_capacity(group.rules.len());
    let mut batch = WriteBatch::default();
    let mut events = Vec::new();
    for (i, rule) in group.rules.iter().enumerate() {
        let rule_started = Instant::now();
        let result = ctx.engine.instant_expr(&rule.expr, now).await;
        let mut last_error = None;
        match (&rule.kind, result) {
            (_, Err(e)) => last_error = Some(e.to_string()),
            (RuleKind::Recording { .. }, Ok(value)) => {
                match rules::record_samples(rule, group, value, now) {
                    Ok(samples) => {
                        let series: Vec<SeriesSamples> = samples
                            .into_iter()
                            .map(|(labels, sample)| SeriesSamples {
                                labels,
                                samples: vec![sample],
                            })
                            .collect();
                        if !series.is_empty() {
                            // Written now so the group's later rules see the new series.
                            let write = WriteBatch {
                                series,
                                ..WriteBatch::default()
                            };
                            if let Err(e) = ctx.store.write(write).await {
                                last_error = Some(format!("writing recorded series: {e}"));
                            }
                        }
                    }
                    Err(e) => last_error = Some(e.to_string()),
                }
            }
            (RuleKind::Alerting { .. }, Ok(value)) => {
                match eval_alerting(ctx, rule, group, value, &alerts[i], now).await {
                    Ok(outcome) => {
                        let changed = !outcome.transitions.is_empty();
                        for t in &outcome.transitions {
                            if let Transition::Resolved(a) = t {
                                batch.resolved_alerts.push((keys[i].clone(), a.clone()));
                            }
                            events.push(AlertEvent {
                                rule_key: keys[i].clone(),
                                group: group.name.clone(),
                                transition: t.clone(),
                                generator_url: generator_url(
                                    &ctx.config.external_url,
                                    &rule.expr_text,
                                ),
                            });
                        }
                        alerts[i] = outcome.alerts;
                        if changed {
                            batch.alert_state.push(RuleAlertState {
                                rule_key: keys[i].clone(),
                                alerts: alerts[i].values().cloned().collect(),
                            });
                        }
                        batch
                            .series
                            .extend(outcome.series.into_iter().map(|(labels, sample)| {
                                SeriesSamples {
                                    labels,
                                    samples: vec![sample],
                                }
                            }));
                    }
                    Err(e) => {
                        if matches!(e, rules::RuleEvalError::AlertLimit { .. }) {
                            alerts[i].clear();
                            batch.alert_state.push(RuleAlertState {
                                rule_key: keys[i].clone(),
                                alerts: Vec::new(),
                            });
                        }
                        last_error = Some(e.to_string());
                    }
                }
            }
        }
        if let Some(e) = &last_error {
            metrics::counter!("redline_collector_rule_evaluation_failures_total").increment(1);
            tracing::warn!(group = %group.name, rule = %rule.name(), error = %e, "rule evaluation failed");
        }
        statuses.push(RuleStatus {
            rule: rule.clone(),
            health: if last_error.is_some() { "err" } else { "ok" },
            last_error,
            last_evaluation_ms: Some(now),
            evaluation_seconds: rule_started.elapsed().as_secs_f64(),
            alerts: alerts[i]
                .values()
                .filter(|a| a.state != State::Inactive)
                .cloned()
                .collect(),
        });
    }
    let has_output = !batch.series.is_empty()
        || !batch.alert_state.is_empty()
        || !batch.resolved_alerts.is_empty();
    // On failure the alert state is written again with the next transition; the in-memory
    // state stays authoritative meanwhile.
    if has_output && let Err(e) = ctx.store.write(batch).await {
        tracing::warn!(group = %group.name, error = %e, "cannot persist the group's evaluation");
        metrics::counter!("redline_collector_rule_persist_failures_total").increment(1);
    }
    for event in events {
        let name = match &event.transition {
            Transition::Pending(_) => "pending",
            Transition::Fired(_) => "firing",
            Transition::Resolved(_) => "resolved",
            Transition::Cancelled(_) => "cancelled",
        };
        metrics::counter!("redline_collector_alert_transitions_total", "to" => name).increment(1);
        // Waits when the dispatcher is behind (back-pressure on evaluation rather than a
        // lost page); fails only when the dispatcher is gone, at shutdown.
        if ctx.events.send(event).await.is_err() {
            metrics::counter!("redline_collector_alert_events_dropped_total").increment(1);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    metrics::histogram!("redline_collector_rule_group_duration_seconds").record(elapsed);
    let mut status = ctx.status.write().unwrap_or_else(|e| e.into_inner());
    if let Some(g) = status.groups.get_mut(index) {
        g.last_evaluation_ms = Some(now);
        g.evaluation_seconds = elapsed;
        g.rules = statuses;
    }
}

/// Active alerts across all groups, for `/api/v1/alerts`.
pub fn active_alerts(status: &RulesStatus) -> Vec<Alert> {
    status
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.alerts.iter().cloned())
        .collect()
}

/// The label set of an alert without `alertname`, handy for messages.
pub fn describe(labels: &Labels) -> String {
    let map: BTreeMap<&str, &str> = labels.iter().collect();
    format!("{map:?}")
}

/// How many renders of templates that call `query` may wait for the query engine at once.
/// Each holds a thread of the blocking pool while it waits, and the engine's own blocking
/// work (store reads, evaluation) needs further threads of the same pool, so the bound is
/// kept far below the pool's size (512 threads by default).
static QUERY_TEMPLATE_RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

/// `rules::eval_alerting` for one rule, with templates' `query` evaluated by the engine at
/// the evaluation time `now`, as Prometheus does.
///
/// Rendering is synchronous and the engine is async. A rule whose templates call `query` is
/// therefore rendered on a blocking-pool thread, where the `query` callback waits for
/// `Engine::instant` with `Handle::block_on`: the wait never occupies a runtime worker, the
/// engine's blocking work always finds a free pool thread (see `QUERY_TEMPLATE_RENDERS`),
/// and every query ends within the engine's timeout, so the wait cannot deadlock. Rules
/// without `query` render inline as before.
async fn eval_alerting(
    ctx: &Context,
    rule: &Rule,
    group: &RuleGroup,
    value: crate::query::Value,
    alerts: &Alerts,
    now: i64,
) -> Result<rules::AlertingOutcome, rules::RuleEvalError> {
    if !rules::eval::templates_use_query(rule) {
        let templates = rules::eval::TemplateContext {
            external_labels: &ctx.config.external_labels,
            external_url: &ctx.config.external_url,
            query: None,
        };
        return rules::eval_alerting(rule, group, value, alerts, now, &templates);
    }
    let internal = |e: String| rules::RuleEvalError::Query(crate::query::QueryError::Internal(e));
    // The semaphore is never closed.
    let _permit = QUERY_TEMPLATE_RENDERS
        .acquire()
        .await
        .map_err(|e| internal(e.to_string()))?;
    let engine = ctx.engine.clone();
    let handle = tokio::runtime::Handle::current();
    let (rule, group, alerts) = (rule.clone(), group.clone(), alerts.clone());
    let external_labels = ctx.config.external_labels.clone();
    let external_url = ctx.config.external_url.clone();
    let task = tokio::task::spawn_blocking(move || {
        let query = |q: &str| {
            let value = handle
                .block_on(engine.instant(q, now))
                .map_err(|e| e.to_string())?;
            rules::eval::query_samples(value)
        };
        let templates = rules::eval::TemplateContext {
            external_labels: &external_labels,
            external_url: &external_url,
            query: Some(&query),
        };
        rules::eval_alerting(&rule, &group, value, &alerts, now, &templates)
    });
    task.await
        .unwrap_or_else(|e| Err(internal(format!("template rendering task failed: {e}"))))
}
