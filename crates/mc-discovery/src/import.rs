//! Bulk import of number ranges and ported numbers from CSV.
//!
//! # Format
//!
//! ```text
//! # comments and blank lines are skipped
//! kind,number,operator
//! range,447700900,sandbox
//! ported,447700900399,other-operator
//! ported,+447700900123,234_15
//! ```
//!
//! One entry a line: `kind` is `range` (a prefix, 1 to 15 digits) or `ported` (a whole
//! MSISDN, 7 to 15 digits); the number may carry a leading `+`; `operator` is an operator
//! id or its `MCC_MNC` (`MCC-MNC` too). The header line is optional. Fields may be quoted.
//!
//! # How it runs
//!
//! Two streaming passes over the file, never holding it in memory: the first checks every
//! line and stops with the first [`MAX_REPORTED_ERRORS`] errors (line numbers included)
//! before anything is written; the second writes batches of [`BATCH`] entries, each batch
//! one transaction, tagged with one import id. In [`ImportMode::Replace`] the entries of
//! each kind the file holds replace all entries of that kind: the rows the import did not
//! write are purged at the end, so until then lookups see the old entries and the new.
//! An import cut short can simply be run again (writes are upserts).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use mc_core::msisdn::Msisdn;
use mc_store::{DiscoveryStore, NumberEntry, NumberKind, StoreError};

use crate::numbers::parse_digits;

/// Entries per store batch.
pub const BATCH: usize = 5_000;
/// Errors reported before the check gives up.
pub const MAX_REPORTED_ERRORS: usize = 20;
/// The longest line accepted.
const MAX_LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Upsert the file's entries, keep the others.
    Merge,
    /// The file is the whole truth for each kind it holds.
    Replace,
}

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file has errors, nothing was imported:\n{}", list(.0))]
    Invalid(Vec<LineError>),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn list(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub ranges: u64,
    pub ported: u64,
    /// Entries removed by a replacing import.
    pub purged: u64,
    pub import_id: i64,
}

/// Resolves the operator column: ids and `MCC_MNC` / `MCC-MNC` → operator id.
#[derive(Debug, Default, Clone)]
pub struct OperatorNames(HashMap<String, String>);

impl OperatorNames {
    pub fn new<'a>(operators: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut map = HashMap::new();
        for (id, mcc, mnc) in operators {
            map.insert(id.to_owned(), id.to_owned());
            map.insert(format!("{mcc}_{mnc}"), id.to_owned());
            map.insert(format!("{mcc}-{mnc}"), id.to_owned());
        }
        OperatorNames(map)
    }

    fn resolve(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Skip,
    Entry(NumberEntry),
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

/// Parses one line (`line_no` counts from 1; the header is only recognised on the first
/// data line).
pub fn parse_line(
    raw: &str,
    first_data_line: bool,
    operators: &OperatorNames,
) -> Result<Line, String> {
    let text = raw.trim_end_matches(['\r', '\n']).trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(Line::Skip);
    }
    if text.len() > MAX_LINE {
        return Err(format!("longer than {MAX_LINE} characters"));
    }
    let fields: Vec<&str> = text.split(',').map(unquote).collect();
    if first_data_line
        && fields.len() == 3
        && fields[0].eq_ignore_ascii_case("kind")
        && fields[1].eq_ignore_ascii_case("number")
        && fields[2].eq_ignore_ascii_case("operator")
    {
        return Ok(Line::Skip);
    }
    let [kind, number, operator] = fields[..] else {
        return Err(format!(
            "expected 3 fields (kind,number,operator), found {}",
            fields.len()
        ));
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "range" => NumberKind::Range,
        "ported" => NumberKind::Ported,
        other => return Err(format!("kind {other:?}: expected range or ported")),
    };
    let number = match kind {
        NumberKind::Range => parse_digits(number)
            .ok_or_else(|| format!("{number:?} is not a prefix of 1 to 15 digits"))?,
        NumberKind::Ported => Msisdn::parse(number)
            .and_then(|m| m.as_str().parse().ok())
            .ok_or_else(|| format!("{number:?} is not an international MSISDN (7 to 15 digits)"))?,
    };
    let operator_id = operators
        .resolve(operator)
        .ok_or_else(|| format!("unknown operator {operator:?}"))?;
    Ok(Line::Entry(NumberEntry {
        kind,
        number,
        operator_id: operator_id.to_owned(),
    }))
}

/// Pass one: every error of `reader` (up to [`MAX_REPORTED_ERRORS`]) and the kinds it
/// holds.
pub fn check(
    reader: impl BufRead,
    operators: &OperatorNames,
) -> Result<(Vec<LineError>, [bool; 2]), std::io::Error> {
    let mut errors = Vec::new();
    let mut kinds = [false; 2];
    let mut first = true;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let line_no = i as u64 + 1;
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t,
            Err(_) => {
                errors.push(LineError {
                    line: line_no,
                    message: "not UTF-8 text".into(),
                });
                continue;
            }
        };
        match parse_line(text, first, operators) {
            Ok(Line::Skip) => {}
            Ok(Line::Entry(e)) => {
                first = false;
                kinds[usize::from(e.kind == NumberKind::Ported)] = true;
            }
            Err(message) => {
                first = false;
                errors.push(LineError {
                    line: line_no,
                    message,
                });
            }
        }
        if errors.len() >= MAX_REPORTED_ERRORS {
            break;
        }
    }
    Ok((errors, kinds))
}

/// Imports the CSV file at `path` (see the module docs).
pub async fn import_file(
    store: &dyn DiscoveryStore,
    path: &Path,
    mode: ImportMode,
    import_id: i64,
) -> Result<ImportReport, ImportError> {
    let operators = OperatorNames::new(
        store
            .list_operators()
            .await?
            .iter()
            .map(|o| (o.id.as_str(), o.mcc.as_str(), o.mnc.as_str()))
            .collect::<Vec<_>>(),
    );
    // Pass one, off the async workers.
    let (errors, kinds) = {
        let path = path.to_owned();
        let operators = operators.clone();
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&path)?;
            check(std::io::BufReader::with_capacity(1 << 16, f), &operators)
        })
        .await
        .map_err(|_| std::io::Error::other("the check task failed"))??
    };
    if !errors.is_empty() {
        return Err(ImportError::Invalid(errors));
    }

    // Pass two: a reader thread parses batches, this task writes them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<NumberEntry>>(2);
    let reader = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), std::io::Error> {
            let f = std::fs::File::open(&path)?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut first = true;
            for line in std::io::BufReader::with_capacity(1 << 16, f).lines() {
                let line = line?;
                match parse_line(&line, first, &operators) {
                    Ok(Line::Entry(e)) => {
                        first = false;
                        batch.push(e);
                    }
                    Ok(Line::Skip) => {}
                    // The file changed between the passes.
                    Err(m) => return Err(std::io::Error::other(m)),
                }
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(full).is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            Ok(())
        })
    };
    let mut report = ImportReport {
        import_id,
        ..Default::default()
    };
    while let Some(batch) = rx.recv().await {
        for e in &batch {
            match e.kind {
                NumberKind::Range => report.ranges += 1,
                NumberKind::Ported => report.ported += 1,
            }
        }
        store.upsert_numbers(&batch, import_id).await?;
    }
    reader
        .await
        .map_err(|_| std::io::Error::other("the reader task failed"))??;
    if mode == ImportMode::Replace {
        for (i, kind) in [NumberKind::Range, NumberKind::Ported]
            .into_iter()
            .enumerate()
        {
            if kinds[i] {
                report.purged += store.purge_numbers_except(kind, import_id).await?;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn names() -> OperatorNames {
        OperatorNames::new([("op-a", "234", "15"), ("op-b", "234", "30")])
    }

    fn entry(kind: NumberKind, number: u64, op: &str) -> Line {
        Line::Entry(NumberEntry {
            kind,
            number,
            operator_id: op.into(),
        })
    }

    #[test]
    fn good_lines() {
        let n = names();
        assert_eq!(parse_line("kind,number,operator", true, &n), Ok(Line::Skip));
        assert_eq!(parse_line("# note", false, &n), Ok(Line::Skip));
        assert_eq!(parse_line("  \r", false, &n), Ok(Line::Skip));
        assert_eq!(
            parse_line("range,447700900,op-a\r", false, &n),
            Ok(entry(NumberKind::Range, 447_700_900, "op-a"))
        );
        assert_eq!(
            parse_line("ported, +447700900399 ,234_30", false, &n),
            Ok(entry(NumberKind::Ported, 447_700_900_399, "op-b"))
        );
        assert_eq!(
            parse_line("\"PORTED\",\"447700900398\",\"234-15\"", false, &n),
            Ok(entry(NumberKind::Ported, 447_700_900_398, "op-a"))
        );
    }

    #[test]
    fn bad_lines_say_why() {
        let n = names();
        for (line, want) in [
            ("range,447700900", "expected 3 fields"),
            ("range,44,op-a,x", "expected 3 fields"),
            ("block,44,op-a", "expected range or ported"),
            ("range,0447,op-a", "not a prefix"),
            ("range,44x,op-a", "not a prefix"),
            ("ported,447700,op-a", "not an international MSISDN"),
            (
                "ported,4477009003991234,op-a",
                "not an international MSISDN",
            ),
            ("range,44,op-z", "unknown operator"),
            ("kind,number,operator", "expected range or ported"),
        ] {
            let err = parse_line(line, false, &n).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        let long = format!("range,44,{}", "x".repeat(300));
        assert!(parse_line(&long, false, &n).unwrap_err().contains("longer"));
    }

    #[test]
    fn check_reports_line_numbers_and_kinds() {
        let n = names();
        let text = "kind,number,operator\nrange,44,op-a\n\nported,12,op-b\nported,447700900399,op-b\nrange,x,op-a\n";
        let (errors, kinds) = check(text.as_bytes(), &n).unwrap();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![4, 6]
        );
        assert_eq!(kinds, [true, true]);
        let (errors, kinds) = check("range,44,op-a\n".as_bytes(), &n).unwrap();
        assert!(errors.is_empty());
        assert_eq!(kinds, [true, false]);
        let (errors, _) = check(&b"range,44,op-a\n\xff\xfe,1,2\n"[..], &n).unwrap();
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("UTF-8"));
    }

    #[test]
    fn check_stops_after_enough_errors() {
        let text = "nonsense\n".repeat(1000);
        let (errors, _) = check(text.as_bytes(), &names()).unwrap();
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS);
    }
}
