//! [`DiscoveryStore`] on PostgreSQL (tables of migration 0007).
//!
//! Every write is one short transaction, retried on a transient conflict like the others,
//! that also bumps `discovery_meta.generation` (one row: discovery writes are admin work
//! and queue on it, which also orders them across nodes). Number batches go in as one
//! `INSERT … SELECT FROM UNNEST($1::bigint[], $2::text[]) … ON CONFLICT DO UPDATE` per
//! table; a batch is deduplicated first (the last entry of a number wins), because one
//! `ON CONFLICT DO UPDATE` statement may not touch a row twice.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use mc_store::{
    DiscoveryAppRecord, DiscoveryGeneration, DiscoveryStore, IpRangeRecord, NumberEntry,
    NumberKind, OperatorCredentialRecord, OperatorRecord, StoreError, StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use crate::{Attempt, Fail, PgStore, backend, on_unique, retrying};

const BUMP: &str = "UPDATE discovery_meta SET generation = generation + 1 WHERE id = 1";
const BUMP_NUMBERS: &str = "UPDATE discovery_meta SET generation = generation + 1, \
     numbers_generation = numbers_generation + 1 WHERE id = 1";
const GENERATION: &str = "SELECT generation, numbers_generation FROM discovery_meta WHERE id = 1";

const GET_OPERATOR: &str = "SELECT id, mcc, mnc, name, country, currency, links, \
     encryption_jwk, enabled, created_at, updated_at FROM discovery_operators WHERE id = $1";
const LIST_OPERATORS: &str = "SELECT id, mcc, mnc, name, country, currency, links, \
     encryption_jwk, enabled, created_at, updated_at FROM discovery_operators ORDER BY id";
const INSERT_OPERATOR: &str = "INSERT INTO discovery_operators (id, mcc, mnc, name, country, \
     currency, links, encryption_jwk, enabled, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const UPDATE_OPERATOR: &str = "UPDATE discovery_operators SET mcc = $2, mnc = $3, name = $4, \
     country = $5, currency = $6, links = $7, encryption_jwk = $8, enabled = $9, \
     updated_at = $11 WHERE id = $1 AND $10::BIGINT IS NOT NULL";
const DELETE_OPERATOR: &str = "DELETE FROM discovery_operators WHERE id = $1";

const GET_APP: &str = "SELECT client_id, secret_hash, name, short_name, redirect_uris, \
     enabled, created_at FROM discovery_apps WHERE client_id = $1";
const LIST_APPS: &str = "SELECT client_id, secret_hash, name, short_name, redirect_uris, \
     enabled, created_at FROM discovery_apps ORDER BY client_id";
const INSERT_APP: &str = "INSERT INTO discovery_apps (client_id, secret_hash, name, \
     short_name, redirect_uris, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPDATE_APP: &str = "UPDATE discovery_apps SET secret_hash = $2, name = $3, \
     short_name = $4, redirect_uris = $5, enabled = $6 \
     WHERE client_id = $1 AND $7::BIGINT IS NOT NULL";
const DELETE_APP: &str = "DELETE FROM discovery_apps WHERE client_id = $1";

const GET_CREDENTIAL: &str = "SELECT app_id, operator_id, client_id, client_secret_sealed, \
     client_name, updated_at FROM discovery_credentials WHERE app_id = $1 AND operator_id = $2";
const LIST_CREDENTIALS: &str = "SELECT app_id, operator_id, client_id, client_secret_sealed, \
     client_name, updated_at FROM discovery_credentials WHERE app_id = $1 ORDER BY operator_id";
const PUT_CREDENTIAL: &str = "INSERT INTO discovery_credentials (app_id, operator_id, \
     client_id, client_secret_sealed, client_name, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (app_id, operator_id) DO UPDATE SET client_id = EXCLUDED.client_id, \
     client_secret_sealed = EXCLUDED.client_secret_sealed, \
     client_name = EXCLUDED.client_name, updated_at = EXCLUDED.updated_at";
const DELETE_CREDENTIAL: &str =
    "DELETE FROM discovery_credentials WHERE app_id = $1 AND operator_id = $2";

const PUT_IP_RANGE: &str = "INSERT INTO discovery_ip_ranges (cidr, operator_id) VALUES ($1, $2) \
     ON CONFLICT (cidr) DO UPDATE SET operator_id = EXCLUDED.operator_id";
const DELETE_IP_RANGE: &str = "DELETE FROM discovery_ip_ranges WHERE cidr = $1";
const LIST_IP_RANGES: &str = "SELECT cidr, operator_id FROM discovery_ip_ranges ORDER BY cidr";

const UPSERT_RANGES: &str = "INSERT INTO discovery_ranges (number, operator_id, import_id) \
     SELECT n, o, $3 FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS t (n, o) \
     ON CONFLICT (number) DO UPDATE SET operator_id = EXCLUDED.operator_id, \
     import_id = EXCLUDED.import_id";
const UPSERT_PORTED: &str = "INSERT INTO discovery_ported (number, operator_id, import_id) \
     SELECT n, o, $3 FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS t (n, o) \
     ON CONFLICT (number) DO UPDATE SET operator_id = EXCLUDED.operator_id, \
     import_id = EXCLUDED.import_id";

struct Sql {
    delete: &'static str,
    after: &'static str,
    purge: &'static str,
    count: &'static str,
    upsert: &'static str,
}

fn sql_of(kind: NumberKind) -> Sql {
    match kind {
        NumberKind::Range => Sql {
            delete: "DELETE FROM discovery_ranges WHERE number = $1",
            after: "SELECT number, operator_id FROM discovery_ranges WHERE number > $1 \
                    ORDER BY number LIMIT $2",
            purge: "DELETE FROM discovery_ranges WHERE import_id <> $1",
            count: "SELECT COUNT(*) AS n FROM discovery_ranges",
            upsert: UPSERT_RANGES,
        },
        NumberKind::Ported => Sql {
            delete: "DELETE FROM discovery_ported WHERE number = $1",
            after: "SELECT number, operator_id FROM discovery_ported WHERE number > $1 \
                    ORDER BY number LIMIT $2",
            purge: "DELETE FROM discovery_ported WHERE import_id <> $1",
            count: "SELECT COUNT(*) AS n FROM discovery_ported",
            upsert: UPSERT_PORTED,
        },
    }
}

/// A bind value of the one-statement writes.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    Bool(bool),
    Bytes(&'a [u8]),
}

fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("number out of range: {n}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is invalid: {e}"))
}

fn get<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name).map_err(|e| backend(e).error)
}

fn links_json(v: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

fn list_json(v: &[String]) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

fn operator_from_row(row: &PgRow) -> StoreResult<OperatorRecord> {
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
        enabled: get(row, "enabled")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn app_from_row(row: &PgRow) -> StoreResult<DiscoveryAppRecord> {
    let uris: String = get(row, "redirect_uris")?;
    Ok(DiscoveryAppRecord {
        client_id: get(row, "client_id")?,
        secret_hash: get(row, "secret_hash")?,
        name: get(row, "name")?,
        short_name: get(row, "short_name")?,
        redirect_uris: serde_json::from_str(&uris).map_err(|e| corrupt("redirect uris", e))?,
        enabled: get(row, "enabled")?,
        created_at: get(row, "created_at")?,
    })
}

fn credential_from_row(row: &PgRow) -> StoreResult<OperatorCredentialRecord> {
    Ok(OperatorCredentialRecord {
        app_id: get(row, "app_id")?,
        operator_id: get(row, "operator_id")?,
        client_id: get(row, "client_id")?,
        client_secret_sealed: get(row, "client_secret_sealed")?,
        client_name: get(row, "client_name")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn operator_conflict(e: sqlx::Error) -> Fail {
    on_unique(e, |text| {
        if text.contains("mcc") {
            StoreError::Conflict("mcc/mnc")
        } else {
            StoreError::Conflict("operator id")
        }
    })
}

fn app_conflict(e: sqlx::Error) -> Fail {
    on_unique(e, |_| StoreError::Conflict("client id"))
}

impl PgStore {
    /// One statement plus the generation bump in one transaction, retried; the rows the
    /// statement changed.
    async fn discovery_write(
        &self,
        what: &'static str,
        statement: &'static str,
        args: &[Arg<'_>],
        on_err: fn(sqlx::Error) -> Fail,
        numbers: bool,
    ) -> StoreResult<u64> {
        retrying(what, || async move {
            let mut tx = self.pool.begin().await.map_err(backend)?;
            let mut q = sqlx::query(statement);
            for a in args {
                q = match *a {
                    Arg::Text(v) => q.bind(v),
                    Arg::OptText(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                    Arg::Bool(v) => q.bind(v),
                    Arg::Bytes(v) => q.bind(v),
                };
            }
            let done = q.execute(&mut *tx).await.map_err(on_err)?;
            sqlx::query(if numbers { BUMP_NUMBERS } else { BUMP })
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn fetch(
        &self,
        what: &'static str,
        statement: &'static str,
        args: &[Arg<'_>],
    ) -> StoreResult<Vec<PgRow>> {
        retrying(what, || async move {
            let mut q = sqlx::query(statement);
            for a in args {
                q = match *a {
                    Arg::Text(v) => q.bind(v),
                    Arg::OptText(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                    Arg::Bool(v) => q.bind(v),
                    Arg::Bytes(v) => q.bind(v),
                };
            }
            q.fetch_all(&self.pool).await.map_err(backend)
        })
        .await
    }

    async fn upsert_numbers_once(
        &self,
        batches: &[(NumberKind, Vec<i64>, Vec<&str>)],
        import_id: i64,
    ) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for (kind, numbers, operators) in batches {
            if numbers.is_empty() {
                continue;
            }
            sqlx::query(sql_of(*kind).upsert)
                .bind(numbers)
                .bind(operators)
                .bind(import_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query(BUMP_NUMBERS)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}

fn one_or_not_found(n: u64) -> StoreResult<()> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl DiscoveryStore for PgStore {
    async fn insert_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let links = links_json(&o.links)?;
        let args = [
            Arg::Text(&o.id),
            Arg::Text(&o.mcc),
            Arg::Text(&o.mnc),
            Arg::Text(&o.name),
            Arg::Text(&o.country),
            Arg::Text(&o.currency),
            Arg::Text(&links),
            Arg::OptText(o.encryption_jwk.as_deref()),
            Arg::Bool(o.enabled),
            Arg::Int(o.created_at),
            Arg::Int(o.updated_at),
        ];
        self.discovery_write(
            "insert_operator",
            INSERT_OPERATOR,
            &args,
            operator_conflict,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn update_operator(&self, o: &OperatorRecord) -> StoreResult<()> {
        let links = links_json(&o.links)?;
        let args = [
            Arg::Text(&o.id),
            Arg::Text(&o.mcc),
            Arg::Text(&o.mnc),
            Arg::Text(&o.name),
            Arg::Text(&o.country),
            Arg::Text(&o.currency),
            Arg::Text(&links),
            Arg::OptText(o.encryption_jwk.as_deref()),
            Arg::Bool(o.enabled),
            Arg::Int(o.created_at),
            Arg::Int(o.updated_at),
        ];
        let n = self
            .discovery_write(
                "update_operator",
                UPDATE_OPERATOR,
                &args,
                operator_conflict,
                false,
            )
            .await?;
        one_or_not_found(n)
    }

    async fn get_operator(&self, id: &str) -> StoreResult<Option<OperatorRecord>> {
        let rows = self
            .fetch("get_operator", GET_OPERATOR, &[Arg::Text(id)])
            .await?;
        rows.first().map(operator_from_row).transpose()
    }

    async fn list_operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        let rows = self.fetch("list_operators", LIST_OPERATORS, &[]).await?;
        rows.iter().map(operator_from_row).collect()
    }

    async fn delete_operator(&self, id: &str) -> StoreResult<()> {
        let n = self
            .discovery_write(
                "delete_operator",
                DELETE_OPERATOR,
                &[Arg::Text(id)],
                backend,
                true,
            )
            .await?;
        one_or_not_found(n)
    }

    async fn insert_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let uris = list_json(&a.redirect_uris)?;
        let args = [
            Arg::Text(&a.client_id),
            Arg::Text(&a.secret_hash),
            Arg::Text(&a.name),
            Arg::Text(&a.short_name),
            Arg::Text(&uris),
            Arg::Bool(a.enabled),
            Arg::Int(a.created_at),
        ];
        self.discovery_write(
            "insert_discovery_app",
            INSERT_APP,
            &args,
            app_conflict,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn get_discovery_app(&self, client_id: &str) -> StoreResult<Option<DiscoveryAppRecord>> {
        let rows = self
            .fetch("get_discovery_app", GET_APP, &[Arg::Text(client_id)])
            .await?;
        rows.first().map(app_from_row).transpose()
    }

    async fn list_discovery_apps(&self) -> StoreResult<Vec<DiscoveryAppRecord>> {
        let rows = self.fetch("list_discovery_apps", LIST_APPS, &[]).await?;
        rows.iter().map(app_from_row).collect()
    }

    async fn update_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()> {
        let uris = list_json(&a.redirect_uris)?;
        let args = [
            Arg::Text(&a.client_id),
            Arg::Text(&a.secret_hash),
            Arg::Text(&a.name),
            Arg::Text(&a.short_name),
            Arg::Text(&uris),
            Arg::Bool(a.enabled),
            Arg::Int(a.created_at),
        ];
        let n = self
            .discovery_write("update_discovery_app", UPDATE_APP, &args, backend, false)
            .await?;
        one_or_not_found(n)
    }

    async fn delete_discovery_app(&self, client_id: &str) -> StoreResult<()> {
        let n = self
            .discovery_write(
                "delete_discovery_app",
                DELETE_APP,
                &[Arg::Text(client_id)],
                backend,
                false,
            )
            .await?;
        one_or_not_found(n)
    }

    async fn put_operator_credential(&self, c: &OperatorCredentialRecord) -> StoreResult<()> {
        let args = [
            Arg::Text(&c.app_id),
            Arg::Text(&c.operator_id),
            Arg::Text(&c.client_id),
            Arg::Bytes(&c.client_secret_sealed),
            Arg::OptText(c.client_name.as_deref()),
            Arg::Int(c.updated_at),
        ];
        self.discovery_write(
            "put_operator_credential",
            PUT_CREDENTIAL,
            &args,
            backend,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn get_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<Option<OperatorCredentialRecord>> {
        let rows = self
            .fetch(
                "get_operator_credential",
                GET_CREDENTIAL,
                &[Arg::Text(app_id), Arg::Text(operator_id)],
            )
            .await?;
        rows.first().map(credential_from_row).transpose()
    }

    async fn list_operator_credentials(
        &self,
        app_id: &str,
    ) -> StoreResult<Vec<OperatorCredentialRecord>> {
        let rows = self
            .fetch(
                "list_operator_credentials",
                LIST_CREDENTIALS,
                &[Arg::Text(app_id)],
            )
            .await?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn delete_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<bool> {
        let n = self
            .discovery_write(
                "delete_operator_credential",
                DELETE_CREDENTIAL,
                &[Arg::Text(app_id), Arg::Text(operator_id)],
                backend,
                false,
            )
            .await?;
        Ok(n > 0)
    }

    async fn upsert_numbers(&self, entries: &[NumberEntry], import_id: i64) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batches = Vec::new();
        for kind in [NumberKind::Range, NumberKind::Ported] {
            // The last entry of a number wins.
            let mut last: HashMap<u64, &str> = HashMap::new();
            let mut order = Vec::new();
            for e in entries.iter().filter(|e| e.kind == kind) {
                if last.insert(e.number, &e.operator_id).is_none() {
                    order.push(e.number);
                }
            }
            let mut numbers = Vec::with_capacity(order.len());
            let mut operators = Vec::with_capacity(order.len());
            for n in order {
                numbers.push(to_i64(n)?);
                operators.push(last[&n]);
            }
            batches.push((kind, numbers, operators));
        }
        retrying("upsert_numbers", || {
            self.upsert_numbers_once(&batches, import_id)
        })
        .await
    }

    async fn delete_number(&self, kind: NumberKind, number: u64) -> StoreResult<bool> {
        let n = self
            .discovery_write(
                "delete_number",
                sql_of(kind).delete,
                &[Arg::Int(to_i64(number)?)],
                backend,
                true,
            )
            .await?;
        Ok(n > 0)
    }

    async fn numbers_after(
        &self,
        kind: NumberKind,
        after: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<NumberEntry>> {
        let after = match after {
            Some(n) => to_i64(n)?,
            None => -1,
        };
        let rows = self
            .fetch(
                "numbers_after",
                sql_of(kind).after,
                &[Arg::Int(after), Arg::Int(i64::from(limit))],
            )
            .await?;
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
        self.discovery_write(
            "purge_numbers_except",
            sql_of(kind).purge,
            &[Arg::Int(import_id)],
            backend,
            true,
        )
        .await
    }

    async fn count_numbers(&self, kind: NumberKind) -> StoreResult<u64> {
        let rows = self.fetch("count_numbers", sql_of(kind).count, &[]).await?;
        let n: i64 = match rows.first() {
            Some(row) => get(row, "n")?,
            None => 0,
        };
        u64::try_from(n).map_err(|_| corrupt("count", n))
    }

    async fn put_ip_range(&self, r: &IpRangeRecord) -> StoreResult<()> {
        self.discovery_write(
            "put_ip_range",
            PUT_IP_RANGE,
            &[Arg::Text(&r.cidr), Arg::Text(&r.operator_id)],
            backend,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn delete_ip_range(&self, cidr: &str) -> StoreResult<bool> {
        let n = self
            .discovery_write(
                "delete_ip_range",
                DELETE_IP_RANGE,
                &[Arg::Text(cidr)],
                backend,
                false,
            )
            .await?;
        Ok(n > 0)
    }

    async fn list_ip_ranges(&self) -> StoreResult<Vec<IpRangeRecord>> {
        let rows = self.fetch("list_ip_ranges", LIST_IP_RANGES, &[]).await?;
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
        let rows = self.fetch("discovery_generation", GENERATION, &[]).await?;
        match rows.first() {
            Some(row) => Ok(DiscoveryGeneration {
                all: get(row, "generation")?,
                numbers: get(row, "numbers_generation")?,
            }),
            None => Err(StoreError::Backend("discovery_meta is empty".into())),
        }
    }
}
