//! [`DiscoveryStore`] on SQLite (tables of migration 0007).
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction that also bumps
//! `discovery_meta.generation`. Number batches are written as multi-row `INSERT … ON
//! CONFLICT DO UPDATE` statements of [`ROWS_PER_STATEMENT`] rows: one statement per row
//! would cost a round trip to the connection's worker thread each, which dominates an
//! import of millions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mc_store::{
    DiscoveryAppRecord, DiscoveryGeneration, DiscoveryStore, IpRangeRecord, NumberEntry,
    NumberKind, OperatorCredentialRecord, OperatorRecord, StoreError, StoreResult,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection};

use crate::{SqliteStore, backend, on_unique};

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

fn get<'r, T>(row: &'r SqliteRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(backend)
}

fn operator_from_row(row: &SqliteRow) -> StoreResult<OperatorRecord> {
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

fn app_from_row(row: &SqliteRow) -> StoreResult<DiscoveryAppRecord> {
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

fn credential_from_row(row: &SqliteRow) -> StoreResult<OperatorCredentialRecord> {
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

async fn bump(conn: &mut SqliteConnection, numbers: bool) -> StoreResult<()> {
    sqlx::query(if numbers { BUMP_NUMBERS } else { BUMP })
        .execute(conn)
        .await
        .map_err(backend)
        .map(|_| ())
}

impl SqliteStore {
    /// Runs one statement and bumps the generation, in one transaction; returns the rows
    /// the statement changed.
    async fn discovery_write<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
        on_err: fn(sqlx::Error) -> StoreError,
        numbers: bool,
    ) -> StoreResult<u64> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let done = query.execute(&mut *tx).await.map_err(on_err)?;
        bump(&mut tx, numbers).await?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }
}

fn operator_conflict(e: sqlx::Error) -> StoreError {
    on_unique(e, |m| {
        if m.contains("discovery_operators.mcc") {
            StoreError::Conflict("mcc/mnc")
        } else {
            StoreError::Conflict("operator id")
        }
    })
}

fn app_conflict(e: sqlx::Error) -> StoreError {
    on_unique(e, |_| StoreError::Conflict("client id"))
}

#[async_trait]
impl DiscoveryStore for SqliteStore {
    async fn insert_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let q = sqlx::query(INSERT_OPERATOR)
            .bind(&o.id)
            .bind(&o.mcc)
            .bind(&o.mnc)
            .bind(&o.name)
            .bind(&o.country)
            .bind(&o.currency)
            .bind(links_json(&o.links)?)
            .bind(&o.encryption_jwk)
            .bind(i64::from(o.enabled))
            .bind(o.created_at)
            .bind(o.updated_at);
        self.discovery_write(q, operator_conflict, false)
            .await
            .map(|_| ())
    }

    async fn update_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let q = sqlx::query(UPDATE_OPERATOR)
            .bind(&o.mcc)
            .bind(&o.mnc)
            .bind(&o.name)
            .bind(&o.country)
            .bind(&o.currency)
            .bind(links_json(&o.links)?)
            .bind(&o.encryption_jwk)
            .bind(i64::from(o.enabled))
            .bind(o.updated_at)
            .bind(&o.id);
        match self.discovery_write(q, operator_conflict, false).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_operator(&self, id: &str) -> StoreResult<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM discovery_operators WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(operator_from_row).transpose()
    }

    async fn list_operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM discovery_operators ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(operator_from_row).collect()
    }

    async fn delete_operator(&self, id: &str) -> StoreResult<()> {
        match self
            .discovery_write(sqlx::query(DELETE_OPERATOR).bind(id), backend, true)
            .await?
        {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn insert_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let q = sqlx::query(INSERT_APP)
            .bind(&a.client_id)
            .bind(&a.secret_hash)
            .bind(&a.name)
            .bind(&a.short_name)
            .bind(list_json(&a.redirect_uris)?)
            .bind(i64::from(a.enabled))
            .bind(a.created_at);
        self.discovery_write(q, app_conflict, false)
            .await
            .map(|_| ())
    }

    async fn get_discovery_app(&self, client_id: &str) -> StoreResult<Option<DiscoveryAppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM discovery_apps WHERE client_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(app_from_row).transpose()
    }

    async fn list_discovery_apps(&self) -> StoreResult<Vec<DiscoveryAppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM discovery_apps ORDER BY client_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(app_from_row).collect()
    }

    async fn update_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let q = sqlx::query(UPDATE_APP)
            .bind(&a.secret_hash)
            .bind(&a.name)
            .bind(&a.short_name)
            .bind(list_json(&a.redirect_uris)?)
            .bind(i64::from(a.enabled))
            .bind(&a.client_id);
        match self.discovery_write(q, backend, false).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn delete_discovery_app(&self, client_id: &str) -> StoreResult<()> {
        match self
            .discovery_write(sqlx::query(DELETE_APP).bind(client_id), backend, false)
            .await?
        {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn put_operator_credential(&self, c: &OperatorCredentialRecord) -> StoreResult<()> {
        let q = sqlx::query(PUT_CREDENTIAL)
            .bind(&c.app_id)
            .bind(&c.operator_id)
            .bind(&c.client_id)
            .bind(&c.client_secret_sealed)
            .bind(&c.client_name)
            .bind(c.updated_at);
        self.discovery_write(q, backend, false).await.map(|_| ())
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
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app_id)
            .bind(operator_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn list_operator_credentials(
        &self,
        app_id: &str,
    ) -> StoreResult<Vec<OperatorCredentialRecord>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM discovery_credentials WHERE app_id = ? \
             ORDER BY operator_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app_id)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn delete_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<bool> {
        let q = sqlx::query(DELETE_CREDENTIAL)
            .bind(app_id)
            .bind(operator_id);
        Ok(self.discovery_write(q, backend, false).await? > 0)
    }

    async fn upsert_numbers(&self, entries: &[NumberEntry], import_id: i64) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for kind in [NumberKind::Range, NumberKind::Ported] {
            let rows: Vec<&NumberEntry> = entries.iter().filter(|e| e.kind == kind).collect();
            let full = upsert_sql(kind, ROWS_PER_STATEMENT);
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let sql = if chunk.len() == ROWS_PER_STATEMENT {
                    full.clone()
                } else {
                    upsert_sql(kind, chunk.len())
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for e in chunk {
                    q = q
                        .bind(to_i64(e.number)?)
                        .bind(&e.operator_id)
                        .bind(import_id);
                }
                q.execute(&mut *tx).await.map_err(backend)?;
            }
        }
        bump(&mut tx, true).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_number(&self, kind: NumberKind, number: u64) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE number = ?", table(kind));
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_i64(number)?);
        Ok(self.discovery_write(q, backend, true).await? > 0)
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let n: i64 = get(row, "number")?;
                Ok(NumberEntry {
                    kind,
                    number: u64::try_from(n).map_err(|_| corrupt("number", n))?,
                    operator_id: get(row, "operator_id")?,
                })
            })
            .collect()
    }

    async fn purge_numbers_except(&self, kind: NumberKind, import_id: i64) -> StoreResult<u64> {
        let sql = format!("DELETE FROM {} WHERE import_id <> ?", table(kind));
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(import_id);
        self.discovery_write(q, backend, true).await
    }

    async fn count_numbers(&self, kind: NumberKind) -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table(kind));
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.read)
            .await
            .map_err(backend)?;
        let n: i64 = get(&row, "n")?;
        u64::try_from(n).map_err(|_| corrupt("count", n))
    }

    async fn put_ip_range(&self, r: &IpRangeRecord) -> StoreResult<()> {
        let q = sqlx::query(PUT_IP_RANGE).bind(&r.cidr).bind(&r.operator_id);
        self.discovery_write(q, backend, false).await.map(|_| ())
    }

    async fn delete_ip_range(&self, cidr: &str) -> StoreResult<bool> {
        let q = sqlx::query(DELETE_IP_RANGE).bind(cidr);
        Ok(self.discovery_write(q, backend, false).await? > 0)
    }

    async fn list_ip_ranges(&self) -> StoreResult<Vec<IpRangeRecord>> {
        let rows = sqlx::query(LIST_IP_RANGES)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(IpRangeRecord {
                    cidr: get(row, "cidr")?,
                    operator_id: get(row, "operator_id")?,
                })
            })
            .collect()
    }

    async fn discovery_generation(&self) -> StoreResult<DiscoveryGeneration> {
        let row = sqlx::query(GENERATION)
            .fetch_one(&self.read)
            .await
            .map_err(backend)?;
        Ok(DiscoveryGeneration {
            all: get(&row, "generation")?,
            numbers: get(&row, "numbers_generation")?,
        })
    }
}
