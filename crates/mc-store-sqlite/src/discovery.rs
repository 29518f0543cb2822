//! [`DiscoveryStore`] on SQLite (tables of migration 0007).
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction that also bumps
//! `discovery_meta.generation`. Number batches are written as multi-row `INSERT … ON
//! CONFLICT DO UPDATE` statements of [`ROWS_PER_STATEMENT`] rows (fewer statements to
//! step through for an import of millions). A batch of more than [`INLINE_ROWS`] rows, the
//! purge of an import's leftovers and the counts (scans of tables of millions of rows) run
//! on tokio's blocking pool; everything else inline.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mc_store::{
    DiscoveryAppRecord, DiscoveryGeneration, DiscoveryStore, IpRangeRecord, NumberEntry,
    NumberKind, OperatorCredentialRecord, OperatorRecord, StoreError, StoreResult,
};
use rusqlite::{Connection, Row, params};

use crate::conn::{exec, immediate, query_all, query_one, query_opt};
use crate::{INLINE_ROWS, SqliteStore, backend, on_unique};

/// Rows per multi-row insert (3 parameters each, well under SQLite's 32 766).
const ROWS_PER_STATEMENT: usize = 500;

const BUMP: &str = "UPDATE discovery_meta SET generation = generation + 1 WHERE id = 1";
const BUMP_NUMBERS: &str = "UPDATE discovery_meta SET generation = generation + 1, \
     numbers_generation = numbers_generation + 1 WHERE id = 1";
const GENERATION: &str = "SELECT generation, numbers_generation FROM discovery_meta WHERE id = 1";

const OPERATOR_COLUMNS: &str = "id, mcc, mnc, name, country, currency, links, encryption_jwk, \
                                enabled, created_at, updated_at";
const INSERT_OPERATOR: &str = "INSERT INTO discovery_operators (id, mcc, mnc, name, country, \
     currency, links, encryption_jwk, enabled, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const UPDATE_OPERATOR: &str = "UPDATE discovery_operators SET mcc = ?, mnc = ?, name = ?, \
     country = ?, currency = ?, links = ?, encryption_jwk = ?, enabled = ?, updated_at = ? \
     WHERE id = ?";
const DELETE_OPERATOR: &str = "DELETE FROM discovery_operators WHERE id = ?";

const APP_COLUMNS: &str = "client_id, secret_hash, name, short_name, redirect_uris, enabled, \
                           created_at";
const INSERT_APP: &str = "INSERT INTO discovery_apps (client_id, secret_hash, name, short_name, \
     redirect_uris, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const UPDATE_APP: &str = "UPDATE discovery_apps SET secret_hash = ?, name = ?, short_name = ?, \
     redirect_uris = ?, enabled = ? WHERE client_id = ?";
const DELETE_APP: &str = "DELETE FROM discovery_apps WHERE client_id = ?";

const CREDENTIAL_COLUMNS: &str =
    "app_id, operator_id, client_id, client_secret_sealed, client_name, updated_at";
const PUT_CREDENTIAL: &str = "INSERT INTO discovery_credentials (app_id, operator_id, \
     client_id, client_secret_sealed, client_name, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (app_id, operator_id) DO UPDATE SET client_id = excluded.client_id, \
     client_secret_sealed = excluded.client_secret_sealed, \
     client_name = excluded.client_name, updated_at = excluded.updated_at";
const DELETE_CREDENTIAL: &str =
    "DELETE FROM discovery_credentials WHERE app_id = ? AND operator_id = ?";

const PUT_IP_RANGE: &str = "INSERT INTO discovery_ip_ranges (cidr, operator_id) VALUES (?, ?) \
     ON CONFLICT (cidr) DO UPDATE SET operator_id = excluded.operator_id";
const DELETE_IP_RANGE: &str = "DELETE FROM discovery_ip_ranges WHERE cidr = ?";
const LIST_IP_RANGES: &str = "SELECT cidr, operator_id FROM discovery_ip_ranges ORDER BY cidr";

fn table(kind: NumberKind) -> &'static str {
    match kind {
        NumberKind::Range => "discovery_ranges",
        NumberKind::Ported => "discovery_ported",
    }
}

fn upsert_sql(kind: NumberKind, rows: usize) -> String {
    let values = vec!["(?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO {} (number, operator_id, import_id) VALUES {values} \
         ON CONFLICT (number) DO UPDATE SET operator_id = excluded.operator_id, \
         import_id = excluded.import_id",
        table(kind)
    )
}

fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("number out of range: {n}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is invalid: {e}"))
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> StoreResult<T> {
    row.get(name).map_err(backend)
}

fn operator_from_row(row: &Row<'_>) -> StoreResult<OperatorRecord> {
    let links: String = get(row, "links")?;
    let links: BTreeMap<String, String> =
        serde_json::from_str(&links).map_err(|e| corrupt("operator links", e))?;
    Ok(OperatorRecord {
        id: get(row, "id")?,
        mcc: get(row, "mcc")?,
        mnc: get(row, "mnc")?,
        name: get(row, "name")?,
        country: get(row, "country")?,
        currency: get(row, "currency")?,
        links,
        encryption_jwk: get(row, "encryption_jwk")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn app_from_row(row: &Row<'_>) -> StoreResult<DiscoveryAppRecord> {
    let uris: String = get(row, "redirect_uris")?;
    Ok(DiscoveryAppRecord {
        client_id: get(row, "client_id")?,
        secret_hash: get(row, "secret_hash")?,
        name: get(row, "name")?,
        short_name: get(row, "short_name")?,
        redirect_uris: serde_json::from_str(&uris).map_err(|e| corrupt("redirect uris", e))?,
        enabled: get::<i64>(row, "enabled")? != 0,
        created_at: get(row, "created_at")?,
    })
}

fn credential_from_row(row: &Row<'_>) -> StoreResult<OperatorCredentialRecord> {
    Ok(OperatorCredentialRecord {
        app_id: get(row, "app_id")?,
        operator_id: get(row, "operator_id")?,
        client_id: get(row, "client_id")?,
        client_secret_sealed: get(row, "client_secret_sealed")?,
        client_name: get(row, "client_name")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn links_json(v: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

fn list_json(v: &[String]) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

fn bump(conn: &Connection, numbers: bool) -> StoreResult<()> {
    exec(conn, if numbers { BUMP_NUMBERS } else { BUMP }, [])
        .map_err(backend)
        .map(|_| ())
}

/// Runs `statement` and bumps the generation, in one transaction; the rows the statement
/// changed.
fn write_and_bump(
    conn: &mut Connection,
    numbers: bool,
    statement: impl FnOnce(&Connection) -> StoreResult<u64>,
) -> StoreResult<u64> {
    let tx = immediate(conn)?;
    let changed = statement(&tx)?;
    bump(&tx, numbers)?;
    tx.commit().map_err(backend)?;
    Ok(changed)
}

/// Writes `entries` (one batch) and bumps the numbers' generation, in one transaction.
fn upsert_batch(conn: &mut Connection, entries: &[NumberEntry], import_id: i64) -> StoreResult<()> {
    let tx = immediate(conn)?;
    for kind in [NumberKind::Range, NumberKind::Ported] {
        let rows: Vec<&NumberEntry> = entries.iter().filter(|e| e.kind == kind).collect();
        let full = upsert_sql(kind, ROWS_PER_STATEMENT);
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut values: Vec<(i64, &str)> = Vec::with_capacity(chunk.len());
            for e in chunk {
                values.push((to_i64(e.number)?, e.operator_id.as_str()));
            }
            let binds: Vec<&dyn rusqlite::ToSql> = values
                .iter()
                .flat_map(|(number, operator)| {
                    [
                        number as &dyn rusqlite::ToSql,
                        operator as &dyn rusqlite::ToSql,
                        &import_id as &dyn rusqlite::ToSql,
                    ]
                })
                .collect();
            // The full-size statement is the same each time: keep it prepared.
            if chunk.len() == ROWS_PER_STATEMENT {
                tx.prepare_cached(&full)
                    .and_then(|mut stmt| stmt.execute(binds.as_slice()))
            } else {
                tx.prepare(&upsert_sql(kind, chunk.len()))
                    .and_then(|mut stmt| stmt.execute(binds.as_slice()))
            }
            .map_err(backend)?;
        }
    }
    bump(&tx, true)?;
    tx.commit().map_err(backend)
}

fn operator_conflict(e: rusqlite::Error) -> StoreError {
    on_unique(e, |m| {
        if m.contains("discovery_operators.mcc") {
            StoreError::Conflict("mcc/mnc")
        } else {
            StoreError::Conflict("operator id")
        }
    })
}

fn app_conflict(e: rusqlite::Error) -> StoreError {
    on_unique(e, |_| StoreError::Conflict("client id"))
}

#[async_trait]
impl DiscoveryStore for SqliteStore {
    async fn insert_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let links = links_json(&o.links)?;
        self.write(|conn| {
            write_and_bump(conn, false, |tx| {
                exec(
                    tx,
                    INSERT_OPERATOR,
                    params![
                        o.id,
                        o.mcc,
                        o.mnc,
                        o.name,
                        o.country,
                        o.currency,
                        links,
                        o.encryption_jwk,
                        i64::from(o.enabled),
                        o.created_at,
                        o.updated_at,
                    ],
                )
                .map_err(operator_conflict)
            })
        })
        .await
        .map(|_| ())
    }

    async fn update_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let links = links_json(&o.links)?;
        let changed = self
            .write(|conn| {
                write_and_bump(conn, false, |tx| {
                    exec(
                        tx,
                        UPDATE_OPERATOR,
                        params![
                            o.mcc,
                            o.mnc,
                            o.name,
                            o.country,
                            o.currency,
                            links,
                            o.encryption_jwk,
                            i64::from(o.enabled),
                            o.updated_at,
                            o.id,
                        ],
                    )
                    .map_err(operator_conflict)
                })
            })
            .await?;
        match changed {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_operator(&self, id: &str) -> StoreResult<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM discovery_operators WHERE id = ?");
        self.read(|conn| query_opt(conn, &sql, [id], operator_from_row))
            .await
    }

    async fn list_operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM discovery_operators ORDER BY id");
        self.read(|conn| query_all(conn, &sql, [], operator_from_row))
            .await
    }

    async fn delete_operator(&self, id: &str) -> StoreResult<()> {
        // The operator's numbers go with it (a cascade of possibly millions of rows).
        let id = id.to_owned();
        let changed = self
            .write_blocking(move |conn| {
                write_and_bump(conn, true, |tx| {
                    exec(tx, DELETE_OPERATOR, [&id]).map_err(backend)
                })
            })
            .await?;
        match changed {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn insert_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let uris = list_json(&a.redirect_uris)?;
        self.write(|conn| {
            write_and_bump(conn, false, |tx| {
                exec(
                    tx,
                    INSERT_APP,
                    params![
                        a.client_id,
                        a.secret_hash,
                        a.name,
                        a.short_name,
                        uris,
                        i64::from(a.enabled),
                        a.created_at,
                    ],
                )
                .map_err(app_conflict)
            })
        })
        .await
        .map(|_| ())
    }

    async fn get_discovery_app(&self, client_id: &str) -> StoreResult<Option<DiscoveryAppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM discovery_apps WHERE client_id = ?");
        self.read(|conn| query_opt(conn, &sql, [client_id], app_from_row))
            .await
    }

    async fn list_discovery_apps(&self) -> StoreResult<Vec<DiscoveryAppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM discovery_apps ORDER BY client_id");
        self.read(|conn| query_all(conn, &sql, [], app_from_row))
            .await
    }

    async fn update_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let uris = list_json(&a.redirect_uris)?;
        let changed = self
            .write(|conn| {
                write_and_bump(conn, false, |tx| {
                    exec(
                        tx,
                        UPDATE_APP,
                        params![
                            a.secret_hash,
                            a.name,
                            a.short_name,
                            uris,
                            i64::from(a.enabled),
                            a.client_id,
                        ],
                    )
                    .map_err(backend)
                })
            })
            .await?;
        match changed {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn delete_discovery_app(&self, client_id: &str) -> StoreResult<()> {
        let changed = self
            .write(|conn| {
                write_and_bump(conn, false, |tx| {
                    exec(tx, DELETE_APP, [client_id]).map_err(backend)
                })
            })
            .await?;
        match changed {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn put_operator_credential(&self, c: &OperatorCredentialRecord) -> StoreResult<()> {
        self.write(|conn| {
            write_and_bump(conn, false, |tx| {
                exec(
                    tx,
                    PUT_CREDENTIAL,
                    params![
                        c.app_id,
                        c.operator_id,
                        c.client_id,
                        c.client_secret_sealed,
                        c.client_name,
                        c.updated_at,
                    ],
                )
                .map_err(backend)
            })
        })
        .await
        .map(|_| ())
    }

    async fn get_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<Option<OperatorCredentialRecord>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM discovery_credentials \
             WHERE app_id = ? AND operator_id = ?"
        );
        self.read(|conn| query_opt(conn, &sql, [app_id, operator_id], credential_from_row))
            .await
    }

    async fn list_operator_credentials(
        &self,
        app_id: &str,
    ) -> StoreResult<Vec<OperatorCredentialRecord>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM discovery_credentials WHERE app_id = ? \
             ORDER BY operator_id"
        );
        self.read(|conn| query_all(conn, &sql, [app_id], credential_from_row))
            .await
    }

    async fn delete_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<bool> {
        let changed = self
            .write(|conn| {
                write_and_bump(conn, false, |tx| {
                    exec(tx, DELETE_CREDENTIAL, [app_id, operator_id]).map_err(backend)
                })
            })
            .await?;
        Ok(changed > 0)
    }

    async fn upsert_numbers(&self, entries: &[NumberEntry], import_id: i64) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if entries.len() <= INLINE_ROWS {
            return self
                .write(|conn| upsert_batch(conn, entries, import_id))
                .await;
        }
        let entries = entries.to_vec();
        self.write_blocking(move |conn| upsert_batch(conn, &entries, import_id))
            .await
    }

    async fn delete_number(&self, kind: NumberKind, number: u64) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE number = ?", table(kind));
        let number = to_i64(number)?;
        let changed = self
            .write(|conn| {
                write_and_bump(conn, true, |tx| exec(tx, &sql, [number]).map_err(backend))
            })
            .await?;
        Ok(changed > 0)
    }

    async fn numbers_after(
        &self,
        kind: NumberKind,
        after: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<NumberEntry>> {
        let sql = format!(
            "SELECT number, operator_id FROM {} WHERE number > ? ORDER BY number LIMIT ?",
            table(kind)
        );
        let after = match after {
            Some(n) => to_i64(n)?,
            None => -1,
        };
        let page = move |conn: &Connection| {
            query_all(conn, &sql, params![after, i64::from(limit)], |row| {
                let n: i64 = get(row, "number")?;
                Ok(NumberEntry {
                    kind,
                    number: u64::try_from(n).map_err(|_| corrupt("number", n))?,
                    operator_id: get(row, "operator_id")?,
                })
            })
        };
        if limit as usize <= INLINE_ROWS {
            self.read(page).await
        } else {
            self.read_blocking(page).await
        }
    }

    async fn purge_numbers_except(&self, kind: NumberKind, import_id: i64) -> StoreResult<u64> {
        let sql = format!("DELETE FROM {} WHERE import_id <> ?", table(kind));
        self.write_blocking(move |conn| {
            write_and_bump(conn, true, |tx| {
                exec(tx, &sql, [import_id]).map_err(backend)
            })
        })
        .await
    }

    async fn count_numbers(&self, kind: NumberKind) -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table(kind));
        let n: i64 = self
            .read_blocking(move |conn| query_one(conn, &sql, [], |row| get(row, "n")))
            .await?;
        u64::try_from(n).map_err(|_| corrupt("count", n))
    }

    async fn put_ip_range(&self, r: &IpRangeRecord) -> StoreResult<()> {
        self.write(|conn| {
            write_and_bump(conn, false, |tx| {
                exec(tx, PUT_IP_RANGE, [&r.cidr, &r.operator_id]).map_err(backend)
            })
        })
        .await
        .map(|_| ())
    }

    async fn delete_ip_range(&self, cidr: &str) -> StoreResult<bool> {
        let changed = self
            .write(|conn| {
                write_and_bump(conn, false, |tx| {
                    exec(tx, DELETE_IP_RANGE, [cidr]).map_err(backend)
                })
            })
            .await?;
        Ok(changed > 0)
    }

    async fn list_ip_ranges(&self) -> StoreResult<Vec<IpRangeRecord>> {
        self.read(|conn| {
            query_all(conn, LIST_IP_RANGES, [], |row| {
                Ok(IpRangeRecord {
                    cidr: get(row, "cidr")?,
                    operator_id: get(row, "operator_id")?,
                })
            })
        })
        .await
    }

    async fn discovery_generation(&self) -> StoreResult<DiscoveryGeneration> {
        self.read(|conn| {
            query_one(conn, GENERATION, [], |row| {
                Ok(DiscoveryGeneration {
                    all: get(row, "generation")?,
                    numbers: get(row, "numbers_generation")?,
                })
            })
        })
        .await
    }
}
