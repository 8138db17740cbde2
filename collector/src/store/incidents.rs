//! Incidents, their timelines and deployments in SQLite.
//!
//! The incident manager (`incident::manager`) is the only writer: it saves each change (the
//! whole record and the timeline entries it adds) in one transaction before it announces the
//! change. The API reads through the read-only pool. The timeline is append-only.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, sql};
use crate::incident::deployment::Deployment;
use crate::incident::{EntryKind, Incident, IncidentId, Status, TimelineEntry};

/// What `GET /api/v1/incidents` filters on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncidentFilter {
    pub status: Option<Status>,
    pub service: Option<String>,
    pub environment: Option<String>,
    /// Opened at or after (ms).
    pub since: Option<i64>,
    /// Opened before (ms).
    pub until: Option<i64>,
    pub limit: usize,
}

/// The outcome of recording a deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum PutDeployment {
    Created,
    /// The id was known: nothing changed. `same` says whether the two records agree.
    Exists {
        stored: Box<Deployment>,
        same: bool,
    },
}

fn encode<T: serde::Serialize>(stage: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Commit(format!("{stage}: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(
    stage: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptRecord(format!("{stage}: {e}")))
}

fn save(
    conn: &mut Connection,
    changes: &[(Incident, String, Vec<TimelineEntry>)],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let tx = conn.transaction().map_err(sql("save incidents"))?;
    let mut ids = Vec::with_capacity(changes.len());
    {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO incidents (id, status, service, environment, opened_at, resolved_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET status = ?2, service = ?3, environment = ?4,
                     opened_at = ?5, resolved_at = ?6, body = ?7",
            )
            .map_err(sql("save incidents"))?;
        let mut append = tx
            .prepare_cached(
                "INSERT INTO incident_timeline (incident_id, at, actor, kind, message, refs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql("save incidents"))?;
        for (incident, body, entries) in changes {
            upsert
                .execute(params![
                    incident.id,
                    incident.status.as_str(),
                    incident.service,
                    incident.environment,
                    incident.opened_at,
                    incident.resolved_at,
                    body
                ])
                .map_err(sql("save incident"))?;
            let mut entry_ids = Vec::with_capacity(entries.len());
            for e in entries {
                let refs = encode("encode timeline refs", &e.refs)?;
                append
                    .execute(params![
                        incident.id,
                        e.at,
                        e.actor,
                        e.kind.as_str(),
                        e.message,
                        refs
                    ])
                    .map_err(sql("append timeline"))?;
                entry_ids.push(tx.last_insert_rowid());
            }
            ids.push(entry_ids);
        }
    }
    tx.commit().map_err(sql("save incidents"))?;
    Ok(ids)
}

/// The entries of one timeline table (`incident_timeline` or `deployment_timeline`) whose
/// `key_column` is `key`, in time order.
pub(super) fn timeline_rows(
    conn: &Connection,
    table: &'static str,
    key_column: &'static str,
    key: &dyn rusqlite::ToSql,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id, at, actor, kind, message, refs FROM {table}
             WHERE {key_column} = ?1 ORDER BY at, id"
        ))
        .map_err(sql("load timeline"))?;
    let rows = stmt
        .query_map([key], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(sql("load timeline"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, actor, kind, message, refs) = row.map_err(sql("load timeline"))?;
        let kind = EntryKind::parse(&kind).ok_or_else(|| {
            StoreError::CorruptRecord(format!("{table} entry {id}: unknown kind {kind:?}"))
        })?;
        out.push(TimelineEntry {
            id,
            at,
            actor,
            kind,
            message,
            refs: decode("decode timeline refs", &refs)?,
        });
    }
    Ok(out)
}

fn incident_rows(
    conn: &Connection,
    where_sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Incident>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT body FROM incidents {where_sql}"))
        .map_err(sql("load incidents"))?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(sql("load incidents"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(
            "decode incident",
            &row.map_err(sql("load incidents"))?,
        )?);
    }
    Ok(out)
}

fn deployment_rows(
    conn: &Connection,
    where_sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Deployment>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT body FROM deployments {where_sql}"))
        .map_err(sql("load deployments"))?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(sql("load deployments"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(
            "decode deployment",
            &row.map_err(sql("load deployments"))?,
        )?);
    }
    Ok(out)
}

impl Store {
    /// Saves incident changes (each record with the timeline entries it adds) in one
    /// transaction; returns the new entries' ids.
    pub async fn save_incidents(
        &self,
        changes: Vec<(Incident, Vec<TimelineEntry>)>,
    ) -> Result<Vec<Vec<i64>>, StoreError> {
        let encoded = changes
            .into_iter()
            .map(|(i, e)| Ok((encode("encode incident", &i)?, i, e)))
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .map(|(body, i, e)| (i, body, e))
            .collect::<Vec<_>>();
        self.exec(move |conn| save(conn, &encoded)).await
    }

    /// Incidents not resolved, and the largest id ever used.
    pub async fn load_open_incidents(&self) -> Result<(Vec<Incident>, IncidentId), StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let open = incident_rows(conn, "WHERE status <> 'resolved' ORDER BY id", &[])?;
                let max: i64 = conn
                    .query_row("SELECT COALESCE(MAX(id), 0) FROM incidents", [], |r| {
                        r.get(0)
                    })
                    .map_err(sql("load incidents"))?;
                Ok((open, max))
            })
        })
        .await
    }

    pub async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                Ok(incident_rows(conn, "WHERE id = ?1", &[&id])?
                    .into_iter()
                    .next())
            })
        })
        .await
    }

    /// Incidents matching `filter`, newest first.
    pub async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let status = filter.status.map(|s| s.as_str().to_owned());
                let limit = filter.limit.max(1) as i64;
                incident_rows(
                    conn,
                    "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR service = ?2)
                       AND (?3 IS NULL OR environment = ?3)
                       AND (?4 IS NULL OR opened_at >= ?4) AND (?5 IS NULL OR opened_at < ?5)
                     ORDER BY opened_at DESC, id DESC LIMIT ?6",
                    &[
                        &status,
                        &filter.service,
                        &filter.environment,
                        &filter.since,
                        &filter.until,
                        &limit,
                    ],
                )
            })
        })
        .await
    }

    /// The timeline of an incident, in time order.
    pub async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.blocking(move |store| {
            store
                .readers
                .with(|conn| timeline_rows(conn, "incident_timeline", "incident_id", &id))
        })
        .await
    }

    /// Records a deployment unless its id is known (ids are immutable).
    pub async fn put_deployment(
        &self,
        deployment: Deployment,
    ) -> Result<PutDeployment, StoreError> {
        let body = encode("encode deployment", &deployment)?;
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("put deployment"))?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT body FROM deployments WHERE id = ?1",
                    [&deployment.id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("put deployment"))?;
            if let Some(text) = existing {
                let stored: Deployment = decode("decode deployment", &text)?;
                let same = stored == deployment;
                return Ok(PutDeployment::Exists {
                    stored: Box::new(stored),
                    same,
                });
            }
            tx.execute(
                "INSERT INTO deployments (id, service, environment, status, finished_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    deployment.id,
                    deployment.service,
                    deployment.environment,
                    deployment.status.as_str(),
                    deployment.finished_at,
                    body
                ],
            )
            .map_err(sql("put deployment"))?;
            tx.commit().map_err(sql("put deployment"))?;
            Ok(PutDeployment::Created)
        })
        .await
    }

    pub async fn deployment(&self, id: String) -> Result<Option<Deployment>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                Ok(deployment_rows(conn, "WHERE id = ?1", &[&id])?
                    .into_iter()
                    .next())
            })
        })
        .await
    }

    /// Deployments (optionally of one service and environment) that finished in
    /// `[since, until)`, oldest first, at most `limit`.
    pub async fn deployments(
        &self,
        service: Option<String>,
        environment: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Deployment>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let limit = limit.max(1) as i64;
                deployment_rows(
                    conn,
                    "WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR environment = ?2)
                       AND (?3 IS NULL OR finished_at >= ?3) AND (?4 IS NULL OR finished_at < ?4)
                     ORDER BY finished_at, id LIMIT ?5",
                    &[&service, &environment, &since, &until, &limit],
                )
            })
        })
        .await
    }

    /// Everything DORA needs for one service and environment: all its deployments and
    /// incidents (history before a window matters: earlier deployments contain commits, later
    /// ones roll back).
    pub async fn dora_events(
        &self,
        service: String,
        environment: String,
    ) -> Result<(Vec<Deployment>, Vec<Incident>), StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let d = deployment_rows(
                    conn,
                    "WHERE service = ?1 AND environment = ?2 ORDER BY finished_at, id",
                    &[&service, &environment],
                )?;
                let i = incident_rows(
                    conn,
                    "WHERE service = ?1 AND environment = ?2 ORDER BY opened_at, id",
                    &[&service, &environment],
                )?;
                Ok((d, i))
            })
        })
        .await
    }

    /// The (service, environment) pairs with a deployment or incident since `since`.
    pub async fn dora_pairs(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT service, environment FROM deployments WHERE finished_at >= ?1
                         UNION
                         SELECT service, environment FROM incidents WHERE opened_at >= ?1 AND service <> ''
                         ORDER BY 1, 2",
                    )
                    .map_err(sql("dora pairs"))?;
                let rows = stmt
                    .query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql("dora pairs"))?;
                rows.collect::<Result<_, _>>().map_err(sql("dora pairs"))
            })
        })
        .await
    }
}
