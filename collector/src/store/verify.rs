//! Verification and rollback state in SQLite: analyses, verdicts, deployment timelines,
//! rollbacks and the maintenance block. Written only by the verifier task (`verify::task`).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, sql};
use crate::incident::TimelineEntry;
use crate::verify::Analysis;
use crate::verify::rollback::{Block, RollbackRecord};
use crate::verify::task::VerificationRecord;

fn encode<T: serde::Serialize>(stage: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Commit(format!("{stage}: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(
    stage: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptRecord(format!("{stage}: {e}")))
}

/// Timeline entries with their references encoded, ready for `insert_entries`.
fn encode_entries(entries: Vec<TimelineEntry>) -> Result<Vec<(String, TimelineEntry)>, StoreError> {
    entries
        .into_iter()
        .map(|e| Ok((encode("encode refs", &e.refs)?, e)))
        .collect()
}

/// Appends entries to a deployment's timeline inside `tx`.
fn insert_entries(
    tx: &rusqlite::Transaction<'_>,
    deployment_id: &str,
    entries: &[(String, TimelineEntry)],
) -> Result<(), StoreError> {
    for (refs, e) in entries {
        tx.execute(
            "INSERT INTO deployment_timeline (deployment_id, at, actor, kind, message, refs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                deployment_id,
                e.at,
                e.actor,
                e.kind.as_str(),
                e.message,
                refs
            ],
        )
        .map_err(sql("append deployment timeline"))?;
    }
    Ok(())
}

fn bodies<T: serde::de::DeserializeOwned>(
    conn: &rusqlite::Connection,
    stage: &'static str,
    query: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(query).map_err(sql(stage))?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(sql(stage))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(stage, &row.map_err(sql(stage))?)?);
    }
    Ok(out)
}

impl Store {
    /// Saves a verification's state, its new analyses and timeline entries in one transaction.
    pub async fn save_verification(
        &self,
        record: VerificationRecord,
        analyses: Vec<Analysis>,
        entries: Vec<TimelineEntry>,
    ) -> Result<(), StoreError> {
        let body = encode("encode verification", &record)?;
        let analyses = analyses
            .into_iter()
            .map(|a| Ok((a.at, encode("encode analysis", &a)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let entries = encode_entries(entries)?;
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("save verification"))?;
            tx.execute(
                "INSERT INTO verifications (deployment_id, verdict, finished_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (deployment_id) DO UPDATE SET verdict = ?2, finished_at = ?3, body = ?4",
                params![record.deployment.id, record.verdict_name(), record.deployment.finished_at, body],
            )
            .map_err(sql("save verification"))?;
            for (at, body) in &analyses {
                tx.execute(
                    "INSERT INTO deployment_analyses (deployment_id, at, body) VALUES (?1, ?2, ?3)",
                    params![record.deployment.id, at, body],
                )
                .map_err(sql("save analysis"))?;
            }
            insert_entries(&tx, &record.deployment.id, &entries)?;
            tx.commit().map_err(sql("save verification"))
        })
        .await
    }

    /// Verifications still running (to resume after a restart).
    pub async fn running_verifications(&self) -> Result<Vec<VerificationRecord>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                bodies(
                    conn,
                    "load verifications",
                    "SELECT body FROM verifications WHERE verdict = 'running'",
                    &[],
                )
            })
        })
        .await
    }

    pub async fn verification(
        &self,
        deployment_id: String,
    ) -> Result<Option<VerificationRecord>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                Ok(bodies(
                    conn,
                    "load verification",
                    "SELECT body FROM verifications WHERE deployment_id = ?1",
                    &[&deployment_id],
                )?
                .into_iter()
                .next())
            })
        })
        .await
    }

    /// A deployment's analyses, in time order.
    pub async fn analyses(&self, deployment_id: String) -> Result<Vec<Analysis>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                bodies(
                    conn,
                    "load analyses",
                    "SELECT body FROM deployment_analyses WHERE deployment_id = ?1 ORDER BY at, id",
                    &[&deployment_id],
                )
            })
        })
        .await
    }

    /// Appends entries to a deployment's timeline.
    pub async fn append_deployment_timeline(
        &self,
        deployment_id: String,
        entries: Vec<TimelineEntry>,
    ) -> Result<(), StoreError> {
        let entries = encode_entries(entries)?;
        self.exec(move |conn| {
            let tx = conn
                .transaction()
                .map_err(sql("append deployment timeline"))?;
            insert_entries(&tx, &deployment_id, &entries)?;
            tx.commit().map_err(sql("append deployment timeline"))
        })
        .await
    }

    pub async fn deployment_timeline(
        &self,
        deployment_id: String,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                super::incidents::timeline_rows(
                    conn,
                    "deployment_timeline",
                    "deployment_id",
                    &deployment_id,
                )
            })
        })
        .await
    }

    /// Creates (id 0: a new id is assigned and returned) or updates a rollback.
    pub async fn save_rollback(
        &self,
        mut record: RollbackRecord,
    ) -> Result<RollbackRecord, StoreError> {
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("save rollback"))?;
            if record.id == 0 {
                let next: i64 = tx
                    .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM rollbacks", [], |r| r.get(0))
                    .map_err(sql("save rollback"))?;
                record.id = next;
            }
            let body = encode("encode rollback", &record)?;
            tx.execute(
                "INSERT INTO rollbacks (id, deployment_id, service, environment, state, created_at, updated_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET state = ?5, updated_at = ?7, body = ?8",
                params![
                    record.id,
                    record.deployment_id,
                    record.service,
                    record.environment,
                    record.state.as_str(),
                    record.created_at,
                    record.updated_at,
                    body
                ],
            )
            .map_err(sql("save rollback"))?;
            tx.commit().map_err(sql("save rollback"))?;
            Ok(record)
        })
        .await
    }

    /// Rollbacks, newest first, optionally only of one service.
    pub async fn rollbacks(
        &self,
        service: Option<String>,
        limit: usize,
    ) -> Result<Vec<RollbackRecord>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let limit = limit.max(1) as i64;
                bodies(
                    conn,
                    "load rollbacks",
                    "SELECT body FROM rollbacks WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2",
                    &[&service, &limit],
                )
            })
        })
        .await
    }

    pub async fn rollback(&self, id: i64) -> Result<Option<RollbackRecord>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                Ok(bodies(
                    conn,
                    "load rollback",
                    "SELECT body FROM rollbacks WHERE id = ?1",
                    &[&id],
                )?
                .into_iter()
                .next())
            })
        })
        .await
    }

    /// Sets (or with `None` lifts) the maintenance block on rollbacks.
    pub async fn set_rollback_block(&self, block: Option<Block>) -> Result<(), StoreError> {
        let body = block
            .as_ref()
            .map(|b| encode("encode block", b))
            .transpose()?;
        self.exec(move |conn| {
            match body {
                Some(body) => conn.execute(
                    "INSERT INTO settings (key, value) VALUES ('rollback_block', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = ?1",
                    [body],
                ),
                None => conn.execute("DELETE FROM settings WHERE key = 'rollback_block'", []),
            }
            .map_err(sql("rollback block"))?;
            Ok(())
        })
        .await
    }

    pub async fn rollback_block(&self) -> Result<Option<Block>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let text: Option<String> = conn
                    .query_row(
                        "SELECT value FROM settings WHERE key = 'rollback_block'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql("rollback block"))?;
                text.map(|t| decode("decode block", &t)).transpose()
            })
        })
        .await
    }
}
