//! The configured integrations (each `webhook_configs` / `email_configs` entry of each
//! receiver), ready to deliver: HTTP clients and SMTP transports built once per configuration
//! and swapped whole on reload. Implements the outbox worker's `Deliver`.
//!
//! An outbox entry names its integration as `receiver/kind/index`. When a reload removed that
//! integration, its pending entries fail permanently ("no longer configured") rather than go to
//! whatever now sits at that index of a changed receiver... which is the same index: a receiver
//! keeps its name, so an edited receiver delivers with its new settings.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::config::{EmailConfig, Receiver, WebhookConfig};
use super::outbox::{Deliver, DeliveryFailure, DeliveryFuture};
use super::{email, payload, webhook};
use crate::store::OutboxRow;

enum Built {
    Webhook(WebhookConfig, reqwest::Client),
    Email(EmailConfig, email::Transport),
    /// Settings that cannot work (bad TLS material, say): every delivery fails permanently
    /// with this message, and `build` reports it at load.
    Broken(String),
}

/// Renders configured email templates (headers, bodies) over the notification being sent.
pub type TemplateRenderer = Arc<
    dyn Fn(&super::Notification, email::TemplateField<'_>, &str) -> Result<String, String>
        + Send
        + Sync,
>;

pub struct Integrations {
    built: RwLock<Arc<HashMap<String, Built>>>,
    templates: Option<TemplateRenderer>,
}

fn build(receivers: &BTreeMap<String, Receiver>) -> (HashMap<String, Built>, Vec<String>) {
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for (name, receiver) in receivers {
        for (i, cfg) in receiver.webhook.iter().enumerate() {
            let id = format!("{name}/webhook/{i}");
            let built = match webhook::build_client(&cfg.http) {
                Ok(client) => Built::Webhook(cfg.clone(), client),
                Err(e) => {
                    errors.push(format!("{id}: {e}"));
                    Built::Broken(e.to_string())
                }
            };
            out.insert(id, built);
        }
        for (i, cfg) in receiver.email.iter().enumerate() {
            let id = format!("{name}/email/{i}");
            let built = match email::build_transport(cfg) {
                Ok(transport) => Built::Email(cfg.clone(), transport),
                Err(e) => {
                    errors.push(format!("{id}: {e}"));
                    Built::Broken(e.to_string())
                }
            };
            out.insert(id, built);
        }
    }
    (out, errors)
}

impl Integrations {
    /// Builds every integration; returns the problems of those that cannot work (they fail
    /// their deliveries permanently, naming the problem).
    pub fn new(
        receivers: &BTreeMap<String, Receiver>,
        templates: Option<TemplateRenderer>,
    ) -> (Integrations, Vec<String>) {
        let (built, errors) = build(receivers);
        (
            Integrations {
                built: RwLock::new(Arc::new(built)),
                templates,
            },
            errors,
        )
    }

    /// Swaps in the integrations of a reloaded configuration.
    pub fn reload(&self, receivers: &BTreeMap<String, Receiver>) -> Vec<String> {
        let (built, errors) = build(receivers);
        if let Ok(mut guard) = self.built.write() {
            *guard = Arc::new(built);
        }
        errors
    }
}

fn permanent(message: String) -> DeliveryFailure {
    DeliveryFailure {
        retryable: false,
        retry_after: None,
        message,
    }
}

impl Deliver for Integrations {
    fn deliver(&self, row: &OutboxRow) -> DeliveryFuture {
        let built = self
            .built
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let row = row.clone();
        let templates = self.templates.clone();
        Box::pin(async move {
            match built.get(&row.integration) {
                None => Err(permanent(format!(
                    "integration {} is no longer configured",
                    row.integration
                ))),
                Some(Built::Broken(message)) => Err(permanent(message.clone())),
                Some(Built::Webhook(cfg, client)) => {
                    let body = match &row.notification.raw_body {
                        // A rollback hook's context document, sent as it is.
                        Some(raw) => serde_json::to_vec(raw)
                            .map_err(|e| permanent(format!("encoding the payload: {e}")))?,
                        None => payload::encode(&row.notification, cfg.max_alerts)
                            .map_err(|e| permanent(format!("encoding the payload: {e}")))?,
                    };
                    webhook::send(client, cfg, &body, &row.idempotency_key)
                        .await
                        .map(|_| ())
                        .map_err(|e| DeliveryFailure {
                            retryable: e.retryable(),
                            retry_after: e.retry_after(),
                            message: e.to_string(),
                        })
                }
                Some(Built::Email(cfg, transport)) => {
                    let notification = &row.notification;
                    let render = |field: email::TemplateField<'_>, text: &str| match &templates {
                        Some(t) => t(notification, field, text),
                        None => Err("templates are not available".to_owned()),
                    };
                    let message = email::build_message(
                        cfg,
                        notification,
                        &row.idempotency_key,
                        SystemTime::now(),
                        &render,
                    )
                    .map_err(|e| DeliveryFailure {
                        retryable: e.retryable(),
                        retry_after: None,
                        message: e.to_string(),
                    })?;
                    email::send(transport, cfg, &message)
                        .await
                        .map(|_| ())
                        .map_err(|e| DeliveryFailure {
                            retryable: e.retryable(),
                            retry_after: None,
                            message: e.to_string(),
                        })
                }
            }
        })
    }
}
