//! The configuration file: TOML plus `MC_*` environment overrides (`__` separates levels,
//! e.g. `MC_GATEWAY__ISSUER`, `MC_DATABASE__URL`, `MC_LISTEN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use mc_gateway::config::GatewayConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub keys: KeySettings,
    #[serde(default)]
    pub log: LogSettings,
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub sandbox: SandboxSettings,
    /// The Discovery service (`docs/discovery.md`), served by this process next to the
    /// gateway, on the same store, under the path of its `base_url`. Absent: not served.
    #[serde(default)]
    pub discovery: Option<mc_discovery::DiscoveryConfig>,
}

/// Test and staging aids of `serve` (the `sandbox` command turns them on itself).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Serve the sandbox's virtual phones (`/phone/{msisdn}` and its device API): anyone who
    /// can reach the gateway can approve any login. For test and staging deployments only
    /// (e.g. a multi-node staging cluster on PostgreSQL); logged as a warning at start.
    pub virtual_phones: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite:PATH` (embedded, one process) or `postgres://user:pass@host/db` (PostgreSQL:
    /// several gateway processes may share it).
    pub url: String,
    /// PostgreSQL: connections of this process's pool (default 8). Every node holds up to
    /// this many; their sum must stay below the server's `max_connections` (see
    /// docs/scaling.md). Ignored for SQLite.
    pub max_connections: Option<u32>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite:./data/mobileconnect.db".into(),
            max_connections: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// File holding the 32-byte key-encryption key, hex; created (mode 0600) on the first
    /// start of an empty database. Keep it apart from the database and its backups.
    pub kek_file: Option<PathBuf>,
    /// The key-encryption key itself, 64 hex digits, instead of a file: for a secret
    /// injected through the environment (`MC_KEYS__KEK`). Never logged.
    pub kek: Option<Secret>,
}

/// A configuration value that is never printed (`Debug` shows `[redacted]`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `mc_gateway=debug,info`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// Loads and validates; the error is one line naming the field.
pub fn load(path: &Path) -> Result<Settings, String> {
    if !path.exists() {
        return Err(format!("config: file {} not found", path.display()));
    }
    // Only the `MC_*` variables naming a section: `MC_TEST_POSTGRES_URL` (the test suites'
    // database) or a shell's `MC_SID` must not stop the start as unknown keys.
    let fig = Figment::new()
        .merge(Toml::file(path))
        .merge(env_overrides());
    let settings: Settings = fig
        .extract()
        .map_err(|e| format!("config: {}", one_line(&e)))?;
    settings.validate()?;
    Ok(settings)
}

/// Settings built from code (the sandbox), still overridable from the environment.
pub fn from_defaults(base: Settings) -> Result<Settings, String> {
    let fig = Figment::from(Serialized::defaults(base)).merge(env_overrides());
    let settings: Settings = fig
        .extract()
        .map_err(|e| format!("config: {}", one_line(&e)))?;
    settings.validate()?;
    Ok(settings)
}

/// Our `MC_*` variables: only those naming a configuration section, so unrelated variables
/// that happen to share the prefix (`MC_SID` of Midnight Commander) are ignored.
fn env_overrides() -> Env {
    Env::prefixed("MC_")
        .filter(|k| {
            // Keys keep the variable's case here: compare without it.
            let k = k.as_str().to_ascii_lowercase();
            SECTIONS
                .iter()
                .any(|s| k == *s || k.starts_with(&format!("{s}__")))
        })
        .split("__")
}

const SECTIONS: [&str; 6] = ["listen", "database", "keys", "log", "gateway", "sandbox"];

/// One line per problem, naming the full path of the field.
fn one_line(e: &figment::Error) -> String {
    use figment::error::Kind;
    let mut parts: Vec<String> = Vec::new();
    for err in e.clone() {
        let path = err.path.join(".");
        let at = |field: &str| {
            if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            }
        };
        parts.push(match &err.kind {
            Kind::MissingField(f) => format!("{}: missing", at(f)),
            Kind::UnknownField(f, expected) => format!(
                "{}: unknown key (expected one of: {})",
                at(f),
                expected.join(", ")
            ),
            other if path.is_empty() => other.to_string(),
            other => format!("{path}: {other}"),
        });
    }
    parts.join("; ")
}

impl Settings {
    fn validate(&self) -> Result<(), String> {
        self.gateway
            .validate()
            .map_err(|e| format!("config: gateway.{e}"))?;
        if self
            .database
            .max_connections
            .is_some_and(|n| !(1..=1000).contains(&n))
        {
            return Err("config: database.max_connections: must be 1..=1000".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err("config: log.format: must be text or json".into());
        }
        self.database()?;
        if let Some(d) = &self.discovery {
            d.validate().map_err(|e| format!("config: {e}"))?;
            discovery_has_a_path_of_its_own(d)?;
        }
        Ok(())
    }

    /// The store `database.url` names.
    pub fn database(&self) -> Result<Database, String> {
        let url = &self.database.url;
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(
                    "config: database.url: must be postgres://user:password@host:port/database"
                        .into(),
                );
            }
            return Ok(Database::Postgres(url.clone()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                "config: database.url: must start with sqlite: or postgres://".to_owned()
            })?;
        if path.is_empty() {
            return Err("config: database.url: empty path".into());
        }
        Ok(Database::Sqlite(PathBuf::from(path)))
    }
}

/// The store of `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `sqlite:PATH`: the embedded store, one gateway process.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…` (the whole URL): shared by every gateway process
    /// configured with it.
    Postgres(String),
}

/// Discovery served next to the gateway needs a path of its own in its `base_url`: both
/// have `/admin/v1/…` routes, and overlapping routes would stop the router at start.
fn discovery_has_a_path_of_its_own(d: &mc_discovery::DiscoveryConfig) -> Result<(), String> {
    if d.base_path().is_empty() {
        return Err(format!(
            "config: discovery.base_url {:?}: needs a path of its own next to the gateway, \
             e.g. https://host/discovery",
            d.base_url
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mc-settings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn minimal_file_loads_with_defaults() {
        let p = write("ok", "[gateway]\nissuer = \"https://id.example\"\n");
        let s = load(&p).unwrap();
        assert_eq!(s.gateway.tokens.code_secs, 60);
        assert_eq!(
            s.database().unwrap(),
            Database::Sqlite(PathBuf::from("./data/mobileconnect.db"))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(&write(
            "type",
            "[gateway]\nissuer = \"https://id.example\"\n[gateway.tokens]\ncode_secs = \"x\"\n",
        ))
        .unwrap_err();
        assert!(e.contains("gateway.tokens.code_secs"), "{e}");
        assert!(!e.contains('\n'));
        let e = load(&write("missing", "listen = \"127.0.0.1:1\"\n[gateway]\n")).unwrap_err();
        assert!(e.contains("issuer"), "{e}");
        let e = load(&write(
            "unknown",
            "[gateway]\nissuer = \"https://id.example\"\nbogus = 1\n",
        ))
        .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = load(&write("authn", "[gateway]\nissuer = \"https://id.example\"\n[gateway.authenticators]\nenabled = [\"carrier_pigeon\"]\n")).unwrap_err();
        assert!(e.contains("gateway.authenticators.enabled"), "{e}");
        let e = load(&write(
            "pg-bad",
            "[database]\nurl = \"postgres:x\"\n[gateway]\nissuer = \"https://id.example\"\n",
        ))
        .unwrap_err();
        assert!(e.contains("database.url"), "{e}");
        let e = load(&write(
            "db-scheme",
            "[database]\nurl = \"mysql://x\"\n[gateway]\nissuer = \"https://id.example\"\n",
        ))
        .unwrap_err();
        assert!(e.contains("database.url"), "{e}");
    }

    #[test]
    fn token_lifetimes_and_quotas_load() {
        let s = load(&write(
            "tm",
            "[gateway]\nissuer = \"https://id.example\"\n[gateway.tokens]\nrefresh_token_secs = 86400\nclient_credentials_secs = 500\n[gateway.throttle]\ndefault_per_second = 10\ndefault_per_day = 100\n",
        ))
        .unwrap();
        assert_eq!(s.gateway.tokens.refresh_token_secs, 86_400);
        assert_eq!(s.gateway.tokens.client_credentials_secs, 500);
        assert_eq!(s.gateway.throttle.default_per_second, 10);
        assert_eq!(s.gateway.throttle.default_per_day, 100);
        let e = load(&write(
            "tm-bad",
            "[gateway]\nissuer = \"https://id.example\"\n[gateway.tokens]\nrefresh_token_secs = 60\n",
        ))
        .unwrap_err();
        assert!(e.contains("refresh_token_secs"), "{e}");
    }

    #[test]
    fn postgres_urls_select_postgresql() {
        for url in [
            "postgres://mc:pw@db.example:5432/mobileconnect",
            "postgresql://mc@db.example/mobileconnect?sslmode=require",
        ] {
            let p = write(
                "pg",
                &format!(
                    "[database]\nurl = \"{url}\"\n[gateway]\nissuer = \"https://id.example\"\n"
                ),
            );
            assert_eq!(
                load(&p).unwrap().database().unwrap(),
                Database::Postgres(url.to_owned())
            );
        }
    }
}
