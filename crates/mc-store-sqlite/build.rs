//! Embeds the `migrations/` directory: writes `$OUT_DIR/migrations.rs`, the list of every
//! `NNNN_description.sql` file in version order (the names as sqlx's `migrate!()` read
//! them: the number before the first `_` is the version, the rest, `_` read as spaces, the
//! description). Reruns when a migration is added, so a new file needs no code change.
use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=migrations");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("migrations");
    let mut found: Vec<(i64, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        println!("cargo:rerun-if-changed={}", path.display());
        let (version, description) = stem
            .split_once('_')
            .ok_or_else(|| format!("migration {name}: expected NNNN_description.sql"))?;
        let version: i64 = version
            .parse()
            .map_err(|e| format!("migration {name}: version: {e}"))?;
        found.push((version, description.replace('_', " "), path));
    }
    found.sort_by_key(|(version, _, _)| *version);
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("two migrations with version {}", w[0].0).into());
    }
    let mut out = String::from("&[\n");
    for (version, description, path) in &found {
        writeln!(
            out,
            "    Migration {{ version: {version}, description: {description:?}, \
             sql: include_str!({:?}) }},",
            path.display().to_string()
        )?;
    }
    out.push_str("]\n");
    let target = PathBuf::from(std::env::var("OUT_DIR")?).join("migrations.rs");
    std::fs::write(target, out)?;
    Ok(())
}
