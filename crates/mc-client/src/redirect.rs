//! What came back to the SP's redirect URI (digest §12, the SDKs' `handleUrlRedirect`):
//! an authorization `code`, an operator selection (`mcc_mnc`), or an error.

use crate::error::Error;

/// A parsed redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The authorization response: exchange `code` ([`crate::Operator::complete`]).
    Code {
        code: String,
        state: Option<String>,
        correlation_id: Option<String>,
    },
    /// The operator-selection page's answer: look the operator up again
    /// ([`crate::discovery::DiscoveryClient::after_selection`]).
    OperatorSelected {
        mcc: String,
        mnc: String,
        subscriber_id: Option<String>,
        subscriber_id_token: Option<String>,
    },
    /// An error: `error` + `error_description` (or `description`), or the sandbox's
    /// `err_msg`. Defaults to `invalid_request` when nothing names it.
    Error {
        error: String,
        description: String,
        state: Option<String>,
    },
}

/// The query pairs of a full URL, a `?query` or a bare query string.
pub(crate) fn query_pairs(url_or_query: &str) -> Vec<(String, String)> {
    let query = match url::Url::parse(url_or_query) {
        Ok(u) => u.query().unwrap_or_default().to_owned(),
        Err(_) => url_or_query
            .split_once('?')
            .map_or(url_or_query, |(_, q)| q)
            .to_owned(),
    };
    let query = query.split('#').next().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Parses what the browser brought back.
///
/// ```
/// use mc_client::redirect::{parse_redirect, Redirect};
/// let r = parse_redirect("https://shop.example/cb?mcc_mnc=901_01&subscriber_id=abc123").unwrap();
/// assert_eq!(r, Redirect::OperatorSelected {
///     mcc: "901".into(), mnc: "01".into(),
///     subscriber_id: Some("abc123".into()), subscriber_id_token: None,
/// });
/// let r = parse_redirect("code=c1&state=s1").unwrap();
/// assert!(matches!(r, Redirect::Code { code, .. } if code == "c1"));
/// ```
pub fn parse_redirect(url_or_query: &str) -> Result<Redirect, Error> {
    let pairs = query_pairs(url_or_query);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let state = get("state");
    if let Some(error) = get("error").or_else(|| get("err_msg")) {
        let description = get("error_description")
            .or_else(|| get("description"))
            .unwrap_or_default();
        return Ok(Redirect::Error {
            error,
            description,
            state,
        });
    }
    if let Some(code) = get("code") {
        return Ok(Redirect::Code {
            code,
            state,
            correlation_id: get("correlation_id"),
        });
    }
    if let Some(mcc_mnc) = get("mcc_mnc") {
        let (mcc, mnc) = mcc_mnc
            .split_once('_')
            .filter(|(mcc, mnc)| {
                mcc.len() == 3
                    && (2..=3).contains(&mnc.len())
                    && mcc.bytes().chain(mnc.bytes()).all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| Error::InvalidResponse {
                endpoint: "operator selection",
                detail: "mcc_mnc is not <MCC>_<MNC>".into(),
            })?;
        return Ok(Redirect::OperatorSelected {
            mcc: mcc.to_owned(),
            mnc: mnc.to_owned(),
            subscriber_id: get("subscriber_id"),
            subscriber_id_token: get("subscriber_id_token"),
        });
    }
    Ok(Redirect::Error {
        error: "invalid_request".into(),
        description: "the redirect carries neither code, mcc_mnc nor error".into(),
        state,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_in_every_spelling() {
        for (q, want) in [
            (
                "error=access_denied&error_description=no&state=s",
                ("access_denied", "no"),
            ),
            (
                "error=access_denied&description=no",
                ("access_denied", "no"),
            ),
            ("err_msg=MSISDNNotFound", ("MSISDNNotFound", "")),
            (
                "",
                (
                    "invalid_request",
                    "the redirect carries neither code, mcc_mnc nor error",
                ),
            ),
        ] {
            match parse_redirect(q).unwrap() {
                Redirect::Error {
                    error, description, ..
                } => {
                    assert_eq!((error.as_str(), description.as_str()), want, "{q}")
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn code_with_state_and_correlation() {
        assert_eq!(
            parse_redirect("http://sp/cb?code=abc&state=st&correlation_id=c#frag").unwrap(),
            Redirect::Code {
                code: "abc".into(),
                state: Some("st".into()),
                correlation_id: Some("c".into())
            }
        );
    }

    #[test]
    fn malformed_mcc_mnc_is_refused() {
        for bad in [
            "mcc_mnc=90101",
            "mcc_mnc=9a1_01",
            "mcc_mnc=901_1",
            "mcc_mnc=901_0123",
        ] {
            assert!(parse_redirect(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_redirect("mcc_mnc=310_260").unwrap(),
            Redirect::OperatorSelected { mnc, .. } if mnc == "260"
        ));
    }
}
