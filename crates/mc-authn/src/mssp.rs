//! The SIM applet channel: an ETSI TS 102 204 `MSS_Signature` client for an operator's
//! MSSP (Mobile Signature Service Provider), in the JSON binding MSSPs expose over
//! REST (`MSS_SignatureReq` / `MSS_StatusReq` objects posted to one service URL).
//!
//! # Design
//!
//! **Asynchronous client-server mode.** [`MsspClient::start`] sends `MSS_SignatureReq`
//! with `MessagingMode: asynchClientServer` and returns the MSSP's transaction id at
//! once (`100 REQUEST_OK`); [`MsspClient::status`] asks `MSS_StatusReq` and reads
//! `504 OUTSTANDING_TRANSACTION` (keep polling), `500 SIGNATURE` / `502 VALID_SIGNATURE`
//! (the subscriber confirmed, with the SIM PIN at LoA3) or a fault. [`MsspClient::run`]
//! does both, polling at [`MsspConfig::poll_interval`] until an answer, a fault or
//! [`MsspConfig::transaction_timeout`].
//!
//! **Faults** carry the TS 102 204 codes (digest §10.4); [`MsspFault::outcome`] maps
//! each to what the authenticator router does with it: the subscriber said no, the
//! subscriber cannot use this channel (try the next authenticator), the channel failed
//! (try the next), the request timed out, the subscriber is busy, or the text is too long.
//!
//! **The text on the SIM** ("data to be signed") is limited in *bytes*: 239 when every
//! character is in the GSM 03.38 alphabet (escaped characters count two), 238 (119
//! characters) in UCS-2. [`fit_display_text`] truncates or refuses per the operator's
//! [`DisplayPolicy`].
//!
//! **Secrets.** `AP_PWD` never appears in logs or `Debug` output.

use std::time::Duration;

use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Bytes of data-to-be-signed a SIM shows when the text is GSM 03.38.
pub const SIM_TEXT_GSM7_BYTES: usize = 239;
/// Bytes when the text needs UCS-2 (119 characters).
pub const SIM_TEXT_UCS2_BYTES: usize = 238;

/// What to do with a text longer than the SIM shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayPolicy {
    /// Cut it (at a character boundary, with an ellipsis).
    Truncate,
    /// Refuse the request (`invalid_request` to the SP).
    Reject,
}

/// The text as the SIM will show it, within its byte limit, or `None` when it is too long
/// and the policy is [`DisplayPolicy::Reject`].
pub fn fit_display_text(text: &str, policy: DisplayPolicy) -> Option<String> {
    let gsm = Gsm7BitUnpacked::new();
    let is_gsm = gsm.encode_to_vec(text).is_ok();
    let size = |s: &str| {
        if is_gsm {
            gsm.encode_to_vec(s).map_or(usize::MAX, |b| b.len())
        } else {
            s.encode_utf16().count() * 2
        }
    };
    let (limit, ellipsis) = if is_gsm {
        (SIM_TEXT_GSM7_BYTES, "...")
    } else {
        (SIM_TEXT_UCS2_BYTES, "…")
    };
    if size(text) <= limit {
        return Some(text.to_owned());
    }
    if policy == DisplayPolicy::Reject {
        return None;
    }
    let room = limit - size(ellipsis);
    let mut cut = String::new();
    for ch in text.chars() {
        let mut next = cut.clone();
        next.push(ch);
        if size(&next) > room {
            break;
        }
        cut = next;
    }
    Some(format!("{}{ellipsis}", cut.trim_end()))
}

/// How to reach the MSSP and what to ask of it.
#[derive(Clone)]
pub struct MsspConfig {
    /// The MSSP's REST service URL (both request kinds are posted there).
    pub url: String,
    pub ap_id: String,
    pub ap_password: String,
    /// `MSSP_Info.MSSP_ID.URI`.
    pub mssp_id: String,
    /// `SignatureProfile` for LoA2 ("press OK") and LoA3 (SIM PIN).
    pub profile_loa2: String,
    pub profile_loa3: String,
    /// `TimeOut` sent to the MSSP, and how long we poll.
    pub transaction_timeout: Duration,
    pub poll_interval: Duration,
    /// One HTTP exchange.
    pub request_timeout: Duration,
    pub display_policy: DisplayPolicy,
    /// `userLang` additional service.
    pub user_lang: String,
}

impl std::fmt::Debug for MsspConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsspConfig")
            .field("url", &self.url)
            .field("ap_id", &self.ap_id)
            .field("ap_password", &"<redacted>")
            .field("mssp_id", &self.mssp_id)
            .finish_non_exhaustive()
    }
}

impl MsspConfig {
    /// Usual settings: 80 s transactions polled every second, 10 s HTTP exchanges,
    /// truncation, English.
    pub fn new(url: &str, ap_id: &str, ap_password: &str) -> MsspConfig {
        MsspConfig {
            url: url.to_owned(),
            ap_id: ap_id.to_owned(),
            ap_password: ap_password.to_owned(),
            mssp_id: "http://mssp.example/".to_owned(),
            profile_loa2: "http://mobileconnect/mssp/profile/loa2".to_owned(),
            profile_loa3: "http://mobileconnect/mssp/profile/loa3".to_owned(),
            transaction_timeout: Duration::from_secs(80),
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            display_policy: DisplayPolicy::Truncate,
            user_lang: "en".to_owned(),
        }
    }
}

/// A TS 102 204 fault (or status) code the MSSP answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MSSP fault {code} {reason}")]
pub struct MsspFault {
    pub code: u16,
    pub reason: String,
}

/// What a fault means for the login (digest §10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// 401 USER_CANCEL: the subscriber refused → `access_denied`.
    Refused,
    /// 105, 402, 403, 404: this subscriber cannot use the SIM channel → next authenticator.
    NotUsable,
    /// 209 OTA_ERROR and server-side faults: the channel failed → next authenticator.
    ChannelFailed,
    /// 208 EXPIRED_TRANSACTION: no answer in time.
    TimedOut,
    /// 406 PB_SIGNATURE_PROCESS: another transaction is running on the SIM.
    Busy,
    /// 103 WRONG_DATA_LENGTH: the text is too long for the SIM.
    TextTooLong,
    /// 101 WRONG_PARAM, 102 MISSING_PARAM, 104 UNAUTHORIZED_ACCESS …: our request or
    /// configuration is wrong.
    Misconfigured,
}

impl MsspFault {
    pub fn outcome(&self) -> FaultOutcome {
        match self.code {
            401 => FaultOutcome::Refused,
            105 | 402 | 403 | 404 => FaultOutcome::NotUsable,
            208 => FaultOutcome::TimedOut,
            406 => FaultOutcome::Busy,
            103 => FaultOutcome::TextTooLong,
            101 | 102 | 104 | 107 | 108 => FaultOutcome::Misconfigured,
            _ => FaultOutcome::ChannelFailed,
        }
    }
}

/// Why a transaction produced no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsspError {
    #[error(transparent)]
    Fault(#[from] MsspFault),
    #[error("the text is longer than the SIM shows")]
    TextTooLong,
    #[error("invalid MSISDN")]
    BadMsisdn,
    #[error("no answer within the transaction timeout")]
    TimedOut,
    #[error("MSSP unreachable or answering nonsense: {0}")]
    Transport(String),
}

impl MsspError {
    /// The router's view of this error.
    pub fn outcome(&self) -> FaultOutcome {
        match self {
            MsspError::Fault(f) => f.outcome(),
            MsspError::TextTooLong => FaultOutcome::TextTooLong,
            MsspError::BadMsisdn => FaultOutcome::NotUsable,
            MsspError::TimedOut => FaultOutcome::TimedOut,
            MsspError::Transport(_) => FaultOutcome::ChannelFailed,
        }
    }
}

/// A started transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub ap_trans_id: String,
    pub mssp_trans_id: String,
    pub msisdn: String,
}

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Outstanding,
    /// The subscriber confirmed; the signature as the MSSP returned it (base64).
    Signed {
        signature: Option<String>,
    },
}

/// An MSSP client; cheap to clone.
#[derive(Clone, Debug)]
pub struct MsspClient {
    http: reqwest::Client,
    cfg: MsspConfig,
}

impl MsspClient {
    pub fn new(cfg: MsspConfig) -> Result<MsspClient, MsspError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| MsspError::Transport(e.to_string()))?;
        Ok(MsspClient { http, cfg })
    }

    pub fn config(&self) -> &MsspConfig {
        &self.cfg
    }

    /// Sends `MSS_SignatureReq` (asynchronous client-server) for `msisdn` with `text` on
    /// the SIM; `pin` selects the LoA3 profile. `ap_trans_id` must be unique per request.
    pub async fn start(
        &self,
        msisdn: &str,
        text: &str,
        pin: bool,
        ap_trans_id: &str,
    ) -> Result<Transaction, MsspError> {
        let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
        if digits.len() < 6 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MsspError::BadMsisdn);
        }
        let text = fit_display_text(text, self.cfg.display_policy).ok_or(MsspError::TextTooLong)?;
        let profile = if pin {
            &self.cfg.profile_loa3
        } else {
            &self.cfg.profile_loa2
        };
        let body = json!({
            "MSS_SignatureReq": {
                "MajorVersion": "1",
                "MinorVersion": "1",
                "AP_Info": self.ap_info(ap_trans_id),
                "MSSP_Info": { "MSSP_ID": { "URI": self.cfg.mssp_id } },
                "MobileUser": { "MSISDN": format!("+{digits}") },
                "DataToBeSigned": { "Data": text, "Encoding": "UTF-8", "MimeType": "text/plain" },
                "SignatureProfile": profile,
                "AdditionalServices": [{
                    "Description": "http://mss.ficom.fi/TS102204/v1.0.0#userLang",
                    "UserLang": { "Value": self.cfg.user_lang }
                }],
                "MessagingMode": "asynchClientServer",
                "TimeOut": self.cfg.transaction_timeout.as_secs().to_string(),
            }
        });
        let answer = self.post(&body, "MSS_SignatureResp").await?;
        let code = status_code(&answer)?;
        if code != 100 {
            return Err(MsspFault {
                code,
                reason: status_message(&answer),
            }
            .into());
        }
        let mssp_trans_id = answer
            .get("MSSP_TransID")
            .and_then(Value::as_str)
            .ok_or_else(|| MsspError::Transport("MSS_SignatureResp without MSSP_TransID".into()))?
            .to_owned();
        Ok(Transaction {
            ap_trans_id: ap_trans_id.to_owned(),
            mssp_trans_id,
            msisdn: format!("+{digits}"),
        })
    }

    /// One `MSS_StatusReq`.
    pub async fn status(&self, tx: &Transaction) -> Result<Status, MsspError> {
        let body = json!({
            "MSS_StatusReq": {
                "MajorVersion": "1",
                "MinorVersion": "1",
                "AP_Info": self.ap_info(&format!("{}.s", tx.ap_trans_id)),
                "MSSP_Info": { "MSSP_ID": { "URI": self.cfg.mssp_id } },
                "MSSP_TransID": tx.mssp_trans_id,
            }
        });
        let answer = self.post(&body, "MSS_StatusResp").await?;
        match status_code(&answer)? {
            504 => Ok(Status::Outstanding),
            500 | 502 => Ok(Status::Signed {
                signature: answer
                    .pointer("/MSS_Signature/Base64Signature")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            code => Err(MsspFault {
                code,
                reason: status_message(&answer),
            }
            .into()),
        }
    }

    /// Starts a transaction and polls it to its end.
    pub async fn run(
        &self,
        msisdn: &str,
        text: &str,
        pin: bool,
        ap_trans_id: &str,
    ) -> Result<Status, MsspError> {
        let tx = self.start(msisdn, text, pin, ap_trans_id).await?;
        self.poll(&tx).await
    }

    /// Polls until the subscriber answers, a fault, or the transaction timeout.
    pub async fn poll(&self, tx: &Transaction) -> Result<Status, MsspError> {
        let deadline = tokio::time::Instant::now() + self.cfg.transaction_timeout;
        loop {
            match self.status(tx).await? {
                Status::Outstanding => {}
                signed => return Ok(signed),
            }
            let next = tokio::time::Instant::now() + self.cfg.poll_interval;
            if next >= deadline {
                return Err(MsspError::TimedOut);
            }
            tokio::time::sleep_until(next).await;
        }
    }

    fn ap_info(&self, ap_trans_id: &str) -> Value {
        json!({
            "AP_ID": self.cfg.ap_id,
            "AP_PWD": self.cfg.ap_password,
            "AP_TransID": ap_trans_id,
            "Instant": instant_now(),
        })
    }

    /// Posts one request; a `Fault` object (whatever the HTTP status) becomes
    /// [`MsspError::Fault`], the expected response object is returned.
    async fn post(&self, body: &Value, expect: &str) -> Result<Value, MsspError> {
        let resp = self
            .http
            .post(&self.cfg.url)
            .header("accept", "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| MsspError::Transport(e.without_url().to_string()))?;
        let http_status = resp.status();
        let value: Value = resp
            .json()
            .await
            .map_err(|_| MsspError::Transport(format!("HTTP {http_status} without a JSON body")))?;
        if let Some(fault) = value.get("Fault") {
            return Err(parse_fault(fault).into());
        }
        value
            .get(expect)
            .cloned()
            .ok_or_else(|| MsspError::Transport(format!("HTTP {http_status} without {expect}")))
    }
}

/// The current time as TS 102 204 `Instant` (xs:dateTime, UTC).
fn instant_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `Fault.Code.SubCode.Value` is `mss:_<code>`; `Reason` the name.
fn parse_fault(fault: &Value) -> MsspFault {
    let code = fault
        .pointer("/Code/SubCode/Value")
        .and_then(Value::as_str)
        .and_then(|s| s.rsplit('_').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(900);
    let reason = fault
        .get("Reason")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN_ERROR")
        .to_owned();
    MsspFault { code, reason }
}

fn status_code(resp: &Value) -> Result<u16, MsspError> {
    resp.pointer("/Status/StatusCode/Value")
        .and_then(|v| match v {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        })
        .ok_or_else(|| MsspError::Transport("response without Status.StatusCode".into()))
}

fn status_message(resp: &Value) -> String {
    resp.pointer("/Status/StatusMessage")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The TS 102 204 name of a status or fault code, for MSSP implementations.
pub fn code_name(code: u16) -> &'static str {
    match code {
        100 => "REQUEST_OK",
        101 => "WRONG_PARAM",
        102 => "MISSING_PARAM",
        103 => "WRONG_DATA_LENGTH",
        104 => "UNAUTHORIZED_ACCESS",
        105 => "UNKNOWN_CLIENT",
        107 => "INAPPROPRIATE_DATA",
        108 => "INCOMPATIBLE_INTERFACE",
        109 => "UNSUPPORTED_PROFILE",
        208 => "EXPIRED_TRANSACTION",
        209 => "OTA_ERROR",
        401 => "USER_CANCEL",
        402 => "PIN_NR_BLOCKED",
        403 => "CARD_BLOCKED",
        404 => "NO_KEY_FOUND",
        406 => "PB_SIGNATURE_PROCESS",
        422 => "NO_CERT_FOUND",
        500 => "SIGNATURE",
        502 => "VALID_SIGNATURE",
        504 => "OUTSTANDING_TRANSACTION",
        _ => "INTERNAL_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_fits_239_bytes_counting_escapes_twice() {
        let fits = "a".repeat(239);
        assert_eq!(fit_display_text(&fits, DisplayPolicy::Reject), Some(fits));
        // '€' is an escaped character: two bytes.
        let euro = format!("{}€", "a".repeat(238));
        assert_eq!(fit_display_text(&euro, DisplayPolicy::Reject), None);
        let cut = fit_display_text(&euro, DisplayPolicy::Truncate).unwrap();
        assert!(cut.ends_with("..."));
        assert_eq!(cut.len(), 239);
    }

    #[test]
    fn ucs2_text_fits_119_characters() {
        let fits = "ж".repeat(119);
        assert_eq!(fit_display_text(&fits, DisplayPolicy::Reject), Some(fits));
        let long = "ж".repeat(120);
        assert_eq!(fit_display_text(&long, DisplayPolicy::Reject), None);
        let cut = fit_display_text(&long, DisplayPolicy::Truncate).unwrap();
        assert_eq!(cut.chars().count(), 119);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn faults_map_to_router_outcomes() {
        let f = |code| {
            MsspFault {
                code,
                reason: String::new(),
            }
            .outcome()
        };
        assert_eq!(f(401), FaultOutcome::Refused);
        for c in [105, 402, 403, 404] {
            assert_eq!(f(c), FaultOutcome::NotUsable, "{c}");
        }
        assert_eq!(f(208), FaultOutcome::TimedOut);
        assert_eq!(f(209), FaultOutcome::ChannelFailed);
        assert_eq!(f(406), FaultOutcome::Busy);
        assert_eq!(f(103), FaultOutcome::TextTooLong);
        assert_eq!(f(104), FaultOutcome::Misconfigured);
        assert_eq!(f(900), FaultOutcome::ChannelFailed);
    }

    #[test]
    fn faults_are_parsed_from_subcodes() {
        let fault = json!({"Code": {"Value": "soapenv:Receiver", "SubCode": {"Value": "mss:_401"}}, "Reason": "USER_CANCEL"});
        assert_eq!(
            parse_fault(&fault),
            MsspFault {
                code: 401,
                reason: "USER_CANCEL".into()
            }
        );
        assert_eq!(parse_fault(&json!({})).code, 900);
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let c = MsspConfig::new("http://127.0.0.1:1/", "ap", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
