//! The sandbox's MSSP: the server side of the ETSI TS 102 204 JSON binding, with virtual
//! SIMs, so that `mobileconnect sandbox` exercises the same MSSP client an operator uses.
//!
//! `POST /mssp/rest/service` takes `MSS_SignatureReq` (asynchronous client-server mode
//! only) and `MSS_StatusReq`; faults come back as `{"Fault": …}` with HTTP 500, like the
//! SOAP faults they mirror. Each virtual SIM has a PIN (LoA3) that blocks after three
//! wrong tries; one transaction at a time per SIM (`406 PB_SIGNATURE_PROCESS`); the text
//! is limited in bytes (`103 WRONG_DATA_LENGTH`). The handset side is a small JSON API
//! under `/mssp/sim/{msisdn}` that the virtual phone page (and tests) use to read the
//! prompt and answer it.
//!
//! **Retransmissions.** A signature request whose `AP_TransID` (of the same AP) names a
//! transaction already started is a retransmission — the gateway sends a request again
//! after a crash when it never learnt whether the first one arrived: when it asks the same
//! (number, text, profile) it is answered with the original transaction and the SIM is not
//! asked again; when it asks something else the `AP_TransID` is refused (`101
//! WRONG_PARAM`), as TS 102 204 requires `AP_TransID` to be unique per AP.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mc_authn::mssp::{SIM_TEXT_GSM7_BYTES, SIM_TEXT_UCS2_BYTES, code_name};
use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Wrong PINs before a SIM blocks.
const PIN_TRIES: u32 = 3;

/// The MSSP's settings.
#[derive(Clone, Debug)]
pub struct MsspSimConfig {
    pub ap_id: String,
    pub ap_password: String,
    pub profile_loa2: String,
    pub profile_loa3: String,
}

struct Sim {
    pin: String,
    wrong_pins: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TxState {
    Outstanding,
    Signed,
    Fault(u16),
}

struct Tx {
    ap_id: String,
    ap_trans_id: String,
    profile: String,
    msisdn: String,
    text: String,
    pin_required: bool,
    state: TxState,
    deadline: Instant,
}

struct Inner {
    config: MsspSimConfig,
    sims: HashMap<String, Sim>,
    txs: HashMap<String, Tx>,
    next_id: u64,
    /// Per MSISDN: signature requests that asked the SIM (new transactions).
    prompts: HashMap<String, usize>,
    /// Per MSISDN: status queries answered.
    status_queries: HashMap<String, usize>,
    /// Retransmissions answered with their original transaction.
    retransmissions: usize,
}

/// The MSSP and its virtual SIMs; cheap to clone.
#[derive(Clone)]
pub struct MsspSim {
    inner: Arc<Mutex<Inner>>,
}

impl MsspSim {
    pub fn new(config: MsspSimConfig) -> MsspSim {
        MsspSim {
            inner: Arc::new(Mutex::new(Inner {
                config,
                sims: HashMap::new(),
                txs: HashMap::new(),
                next_id: 1,
                prompts: HashMap::new(),
                status_queries: HashMap::new(),
                retransmissions: 0,
            })),
        }
    }

    /// Gives `msisdn` (E.164 with `+`) an applet-capable SIM with this PIN.
    pub fn add_sim(&self, msisdn: &str, pin: &str) {
        self.lock().sims.insert(
            msisdn.to_owned(),
            Sim {
                pin: pin.to_owned(),
                wrong_pins: 0,
            },
        );
    }

    /// Signature requests for `msisdn` that asked its SIM (retransmissions not counted).
    pub fn prompts(&self, msisdn: &str) -> usize {
        self.lock().prompts.get(msisdn).copied().unwrap_or(0)
    }

    /// Status queries answered for transactions of `msisdn`.
    pub fn status_queries(&self, msisdn: &str) -> usize {
        self.lock().status_queries.get(msisdn).copied().unwrap_or(0)
    }

    /// Retransmitted signature requests answered with their original transaction.
    pub fn retransmissions(&self) -> usize {
        self.lock().retransmissions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another request panicked mid-update of plain data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The routes: the MSSP service and the handset API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/mssp/rest/service", post(service))
            .route("/mssp/sim/{msisdn}", get(sim_view))
            .route("/mssp/sim/{msisdn}/answer", post(sim_answer))
            .route("/mssp/sim/{msisdn}/expire", post(sim_expire))
            .with_state(self.clone())
    }
}

/// A TS 102 204 fault as the JSON binding carries it.
fn fault(code: u16, detail: &str) -> Response {
    let body = json!({
        "Fault": {
            "Code": {
                "Value": "soapenv:Receiver",
                "SubCode": { "Value": format!("mss:_{code}") }
            },
            "Reason": code_name(code),
            "Detail": detail,
        }
    });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

fn status(code: u16) -> Value {
    json!({ "StatusCode": { "Value": code.to_string() }, "StatusMessage": code_name(code) })
}

fn text_fits(text: &str) -> bool {
    match Gsm7BitUnpacked::new().encode_to_vec(text) {
        Ok(bytes) => bytes.len() <= SIM_TEXT_GSM7_BYTES,
        Err(_) => text.encode_utf16().count() * 2 <= SIM_TEXT_UCS2_BYTES,
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

async fn service(State(mssp): State<MsspSim>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return fault(101, "the body is not JSON");
    };
    if let Some(req) = request.get("MSS_SignatureReq") {
        signature_request(&mssp, req)
    } else if let Some(req) = request.get("MSS_StatusReq") {
        status_request(&mssp, req)
    } else {
        fault(102, "expected MSS_SignatureReq or MSS_StatusReq")
    }
}

/// The AP's credentials, checked first on every request: the fault code and detail when
/// they are missing or wrong.
fn unauthorised(inner: &Inner, req: &Value) -> Option<(u16, &'static str)> {
    match (
        str_at(req, "/AP_Info/AP_ID"),
        str_at(req, "/AP_Info/AP_PWD"),
    ) {
        (Some(id), Some(pwd)) if id == inner.config.ap_id && pwd == inner.config.ap_password => {
            None
        }
        (Some(_), Some(_)) => Some((104, "unknown AP or wrong password")),
        _ => Some((102, "AP_Info.AP_ID and AP_PWD are required")),
    }
}

fn signature_request(mssp: &MsspSim, req: &Value) -> Response {
    let mut inner = mssp.lock();
    if let Some((code, detail)) = unauthorised(&inner, req) {
        return fault(code, detail);
    }
    let (Some(msisdn), Some(text), Some(profile)) = (
        str_at(req, "/MobileUser/MSISDN"),
        str_at(req, "/DataToBeSigned/Data"),
        str_at(req, "/SignatureProfile"),
    ) else {
        return fault(
            102,
            "MobileUser.MSISDN, DataToBeSigned.Data and SignatureProfile are required",
        );
    };
    if str_at(req, "/MessagingMode") != Some("asynchClientServer") {
        return fault(101, "only asynchClientServer is offered");
    }
    let pin_required = if profile == inner.config.profile_loa3 {
        true
    } else if profile == inner.config.profile_loa2 {
        false
    } else {
        return fault(109, "unknown SignatureProfile");
    };
    let timeout = str_at(req, "/TimeOut")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| (1..=600).contains(t))
        .unwrap_or(80);
    if !text_fits(text) {
        return fault(103, "DataToBeSigned is longer than the SIM shows");
    }
    let msisdn = msisdn.to_owned();
    let ap_id = str_at(req, "/AP_Info/AP_ID").unwrap_or_default().to_owned();
    let ap_trans_id = str_at(req, "/AP_Info/AP_TransID")
        .unwrap_or_default()
        .to_owned();
    if ap_trans_id.is_empty() {
        return fault(102, "AP_Info.AP_TransID is required");
    }
    let earlier = inner
        .txs
        .iter()
        .find(|(_, t)| t.ap_id == ap_id && t.ap_trans_id == ap_trans_id)
        .map(|(id, t)| {
            let same = t.msisdn == msisdn && t.text == text && t.profile == profile;
            (id.clone(), same)
        });
    match earlier {
        // The same request again: the transaction it started, the SIM not asked twice.
        Some((id, true)) => {
            inner.retransmissions += 1;
            return signature_response(req, &id, &msisdn);
        }
        Some((_, false)) => {
            return fault(101, "AP_TransID already used for another request");
        }
        None => {}
    }
    match inner.sims.get(&msisdn) {
        None => return fault(105, "no applet-capable SIM for this number"),
        Some(sim) if sim.wrong_pins >= PIN_TRIES => return fault(402, "the SIM PIN is blocked"),
        Some(_) => {}
    }
    let now = Instant::now();
    // Ended transactions are kept ten minutes for late status queries, then forgotten.
    inner
        .txs
        .retain(|_, t| t.deadline + Duration::from_secs(600) > now);
    let busy = inner
        .txs
        .values()
        .any(|t| t.msisdn == msisdn && t.state == TxState::Outstanding && t.deadline > now);
    if busy {
        return fault(406, "another transaction is running on this SIM");
    }
    let id = format!("mssp{:06}", inner.next_id);
    inner.next_id += 1;
    inner.txs.insert(
        id.clone(),
        Tx {
            ap_id,
            ap_trans_id,
            profile: profile.to_owned(),
            msisdn: msisdn.clone(),
            text: text.to_owned(),
            pin_required,
            state: TxState::Outstanding,
            deadline: now + Duration::from_secs(timeout),
        },
    );
    *inner.prompts.entry(msisdn.clone()).or_default() += 1;
    signature_response(req, &id, &msisdn)
}

/// `100 REQUEST_OK` for transaction `id`.
fn signature_response(req: &Value, id: &str, msisdn: &str) -> Response {
    let body = json!({
        "MSS_SignatureResp": {
            "AP_Info": req.get("AP_Info"),
            "MSSP_Info": req.get("MSSP_Info"),
            "MSSP_TransID": id,
            "MobileUser": { "MSISDN": msisdn },
            "Status": status(100),
        }
    });
    Json(body).into_response()
}

fn status_request(mssp: &MsspSim, req: &Value) -> Response {
    let mut inner = mssp.lock();
    if let Some((code, detail)) = unauthorised(&inner, req) {
        return fault(code, detail);
    }
    let Some(id) = str_at(req, "/MSSP_TransID") else {
        return fault(102, "MSSP_TransID is required");
    };
    let Some(tx) = inner.txs.get_mut(id) else {
        return fault(101, "unknown MSSP_TransID");
    };
    if tx.state == TxState::Outstanding && tx.deadline <= Instant::now() {
        tx.state = TxState::Fault(208);
    }
    let state = tx.state.clone();
    let tx_msisdn = tx.msisdn.clone();
    *inner.status_queries.entry(tx_msisdn.clone()).or_default() += 1;
    let code = match state {
        TxState::Outstanding => 504,
        TxState::Signed => 500,
        TxState::Fault(code) => return fault(code, "transaction ended"),
    };
    let mut resp = json!({
        "AP_Info": req.get("AP_Info"),
        "MSSP_TransID": id,
        "MobileUser": { "MSISDN": tx_msisdn },
        "Status": status(code),
    });
    if code == 500 {
        // The sandbox SIM has no key pair; the "signature" is a marker of the approval.
        resp["MSS_Signature"] = json!({ "Base64Signature": "c2FuZGJveC1zaW0tYXBwcm92YWw=" });
    }
    Json(json!({ "MSS_StatusResp": resp })).into_response()
}

async fn sim_view(State(mssp): State<MsspSim>, Path(msisdn): Path<String>) -> Response {
    let inner = mssp.lock();
    let Some(sim) = inner.sims.get(&msisdn) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such SIM"}))).into_response();
    };
    let now = Instant::now();
    let pending: Vec<Value> = inner
        .txs
        .iter()
        .filter(|(_, t)| t.msisdn == msisdn && t.state == TxState::Outstanding && t.deadline > now)
        .map(|(id, t)| json!({"trans_id": id, "text": t.text, "pin_required": t.pin_required}))
        .collect();
    Json(json!({
        "msisdn": msisdn,
        "blocked": sim.wrong_pins >= PIN_TRIES,
        "pending": pending,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SimAnswer {
    trans_id: String,
    accept: bool,
    #[serde(default)]
    pin: Option<String>,
}

fn sim_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn sim_answer(
    State(mssp): State<MsspSim>,
    Path(msisdn): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(answer) = serde_json::from_slice::<SimAnswer>(&body) else {
        return sim_error(StatusCode::BAD_REQUEST, "expected {trans_id, accept, pin?}");
    };
    let mut guard = mssp.lock();
    let inner = &mut *guard;
    let Some(tx) = inner
        .txs
        .get_mut(&answer.trans_id)
        .filter(|t| t.msisdn == msisdn)
    else {
        return sim_error(StatusCode::NOT_FOUND, "no such transaction on this SIM");
    };
    if tx.state != TxState::Outstanding || tx.deadline <= Instant::now() {
        return sim_error(StatusCode::CONFLICT, "the transaction is over");
    }
    if !answer.accept {
        tx.state = TxState::Fault(401);
        return Json(json!({"outcome": "cancelled"})).into_response();
    }
    if tx.pin_required {
        let Some(sim) = inner.sims.get_mut(&msisdn) else {
            return sim_error(StatusCode::NOT_FOUND, "no such SIM");
        };
        if answer.pin.as_deref() != Some(sim.pin.as_str()) {
            sim.wrong_pins += 1;
            let left = PIN_TRIES.saturating_sub(sim.wrong_pins);
            if left == 0 {
                tx.state = TxState::Fault(402);
                return sim_error(
                    StatusCode::FORBIDDEN,
                    "wrong PIN; the SIM PIN is now blocked",
                );
            }
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "wrong PIN", "tries_left": left})),
            )
                .into_response();
        }
        sim.wrong_pins = 0;
    }
    tx.state = TxState::Signed;
    Json(json!({"outcome": "signed"})).into_response()
}

#[derive(Deserialize)]
struct SimExpire {
    trans_id: String,
}

/// Ends a transaction as if its timeout had passed (the sandbox's "walk away" button).
async fn sim_expire(
    State(mssp): State<MsspSim>,
    Path(msisdn): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<SimExpire>(&body) else {
        return sim_error(StatusCode::BAD_REQUEST, "expected {trans_id}");
    };
    let mut inner = mssp.lock();
    match inner
        .txs
        .get_mut(&req.trans_id)
        .filter(|t| t.msisdn == msisdn && t.state == TxState::Outstanding)
    {
        Some(tx) => {
            tx.deadline = Instant::now();
            Json(json!({"outcome": "expired"})).into_response()
        }
        None => sim_error(
            StatusCode::NOT_FOUND,
            "no outstanding transaction with that id",
        ),
    }
}
