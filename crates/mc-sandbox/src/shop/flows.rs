//! The shop's handlers: the three Mobile Connect round trips (login, second factor,
//! payment) and the pages around them.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mc_client::authorize::{AuthorizationRequest, LoginHint};
use mc_client::discovery::{DiscoveryOutcome, DiscoveryRequest};
use mc_client::redirect::{Redirect, parse_redirect};
use mc_client::{Error, Operator};
use mc_gateway::state::{now, random_token};
use serde::Deserialize;

use super::Shop;
use super::accounts::{LoginFacts, Payment, Pending, Purpose, Session};
use super::pages::{self, see_other, with_cookie};

/// The basket: one item at one price (the payment's `context` names both).
pub const ITEM: &str = "Wireless headphones";
pub const AMOUNT: &str = "GBP 42.00";

/// The browser's session: its id, its data, and whether the cookie must be set.
struct Browser {
    sid: String,
    new: bool,
    session: Session,
}

impl Browser {
    fn of(shop: &Shop, headers: &HeaderMap) -> Browser {
        if let Some(sid) = pages::session_id(headers)
            && let Some(session) = shop.0.data.session(&sid)
        {
            return Browser {
                sid,
                new: false,
                session,
            };
        }
        Browser {
            sid: random_token(),
            new: true,
            session: Session::default(),
        }
    }

    /// Saves the session and sets the cookie on `resp` when it is new.
    fn done(self, shop: &Shop, resp: Response) -> Response {
        shop.0.data.put_session(&self.sid, self.session);
        if self.new {
            with_cookie(resp, &self.sid)
        } else {
            resp
        }
    }
}

/// The operator's display name from Discovery's `serving_operator`.
fn operator_name(op: &Operator) -> String {
    let id = op
        .discovered()
        .and_then(|d| d.serving_operator.clone())
        .unwrap_or_default();
    if id == crate::discovery::OPERATOR_ID {
        return "Sandbox Operator".into();
    }
    crate::operators::EXTRA_OPERATORS
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| op.issuer().to_owned(), |d| d.name.to_owned())
}

/// Four characters easy to compare on two screens (no 0/O, 1/I).
fn short_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_token()
        .bytes()
        .take(4)
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn failed(what: &str, e: &Error) -> Response {
    tracing::warn!(error = %e, "shop: {what}");
    pages::message(
        StatusCode::BAD_GATEWAY,
        "Mobile Connect did not work",
        &format!("{what}: {e}"),
    )
}

pub async fn home(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let notice = b.session.notice.take();
    let account = b.session.account.and_then(|id| shop.0.data.account(id));
    let resp = pages::home(notice.as_deref(), account.as_ref());
    b.done(&shop, resp)
}

pub async fn account(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let Some(a) = b.session.account.and_then(|id| shop.0.data.account(id)) else {
        return b.done(&shop, see_other(super::PATH));
    };
    let notice = b.session.notice.take();
    let resp = pages::account(notice.as_deref(), &a);
    b.done(&shop, resp)
}

/// "Log in with Mobile Connect": Discovery without a hint sends the browser to the
/// operator-selection page (or names the operator at once, e.g. by the source IP).
pub async fn login(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let resp = match shop.0.discovery.discover(&DiscoveryRequest::none()).await {
        Ok(DiscoveryOutcome::OperatorSelection { url }) => {
            b.session.selecting = Some(Purpose::Login);
            see_other(&url)
        }
        Ok(DiscoveryOutcome::Operator(found)) => {
            match shop.0.mc.operator_from_discovery(&found).await {
                Ok(op) => start(&shop, &mut b.session, Purpose::Login, op),
                Err(e) => failed("the operator's metadata", &e),
            }
        }
        Err(e) => failed("Discovery", &e),
    };
    b.done(&shop, resp)
}

/// Sends the browser to `op`'s authorization endpoint for `purpose`.
fn start(shop: &Shop, session: &mut Session, purpose: Purpose, op: Operator) -> Response {
    let cb = shop.0.callback.as_str();
    let account = |id: u64| shop.0.data.account(id);
    let req = match &purpose {
        Purpose::Login => {
            let mut r = AuthorizationRequest::authn(cb);
            if let Some(hint) = op.discovered().and_then(LoginHint::from_discovery) {
                r = r.login_hint(hint);
            }
            r
        }
        Purpose::SecondFactor { account: id } => match account(*id) {
            Some(a) => AuthorizationRequest::authn(cb).login_hint(LoginHint::Pcr(a.pcr)),
            None => return see_other(super::PATH),
        },
        Purpose::Pay {
            account: id,
            context,
            binding_message,
            ..
        } => match account(*id) {
            Some(a) => AuthorizationRequest::authz(cb, context)
                .binding_message(binding_message)
                .login_hint(LoginHint::Pcr(a.pcr)),
            None => return see_other(super::PATH),
        },
    };
    match op.authorize(req) {
        Ok(startup) => {
            session.pending = Some(Pending {
                purpose,
                login: startup.pending,
                operator: op,
            });
            see_other(&startup.url)
        }
        Err(e) => failed("the authorization request", &e),
    }
}

/// Where Discovery's selection page and the operators send the browser back.
pub async fn callback(
    State(shop): State<Shop>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let query = query.unwrap_or_default();
    let resp = match parse_redirect(&query) {
        Err(e) => pages::message(
            StatusCode::BAD_REQUEST,
            "Unexpected answer",
            &format!("This is not an answer the shop understands: {e}"),
        ),
        Ok(r @ Redirect::OperatorSelected { .. }) => selected(&shop, &mut b.session, &r).await,
        Ok(Redirect::Error {
            error,
            description,
            state: None,
        }) if b.session.selecting.is_some() => {
            b.session.selecting = None;
            cancelled(&error, &description)
        }
        Ok(Redirect::Code { state, .. } | Redirect::Error { state, .. })
            if state.is_some()
                && state.as_deref()
                    == b.session.pending.as_ref().map(|p| p.login.state.as_str()) =>
        {
            back_from_operator(&shop, &mut b.session, &query).await
        }
        // A forged or stale answer does not cancel the request under way.
        Ok(_) => pages::message(
            StatusCode::BAD_REQUEST,
            "No login under way",
            "This answer belongs to no request of this browser. Start again.",
        ),
    };
    b.done(&shop, resp)
}

fn cancelled(error: &str, description: &str) -> Response {
    let text = if error == "access_denied" {
        "You cancelled. Nothing was changed.".to_owned()
    } else {
        format!("{error}: {description}")
    };
    pages::message(StatusCode::OK, "Not logged in", &text)
}

/// The operator-selection page answered: ask Discovery for that operator and go there.
async fn selected(shop: &Shop, session: &mut Session, r: &Redirect) -> Response {
    let Some(purpose) = session.selecting.take() else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "No login under way",
            "Start again with \"Log in with Mobile Connect\".",
        );
    };
    match shop.0.discovery.after_selection(r).await {
        Ok(DiscoveryOutcome::Operator(found)) => {
            match shop.0.mc.operator_from_discovery(&found).await {
                Ok(op) => start(shop, session, purpose, op),
                Err(e) => failed("the operator's metadata", &e),
            }
        }
        Ok(DiscoveryOutcome::OperatorSelection { url }) => {
            session.selecting = Some(purpose);
            see_other(&url)
        }
        Err(e) => failed("Discovery", &e),
    }
}

/// The operator answered (code or error): finish the round trip under way.
async fn back_from_operator(shop: &Shop, session: &mut Session, query: &str) -> Response {
    let Some(p) = session.pending.take() else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "No login under way",
            "This answer belongs to no request of this browser. Start again.",
        );
    };
    let login = match p.operator.complete(&p.login, query).await {
        Ok(l) => l,
        Err(Error::Authorization { error, description }) => {
            return cancelled(&error, &description);
        }
        Err(e) => return failed("the operator's answer", &e),
    };
    let t = &login.id_token;
    let facts = |how: &str| LoginFacts {
        acr: t.acr.clone().unwrap_or_default(),
        amr: t.amr.clone(),
        at: now(),
        how: how.to_owned(),
    };
    let data = &shop.0.data;
    match p.purpose {
        Purpose::Login => {
            let (a, created) =
                data.find_or_create(&t.iss, t.pcr(), &operator_name(&p.operator), &p.operator);
            let f = facts("Mobile Connect");
            data.update(a.id, |a| a.last_login = Some(f));
            session.account = Some(a.id);
            session.notice = Some(if created {
                "Welcome! Your account was created from your Mobile Connect identity.".into()
            } else {
                "Welcome back.".into()
            });
            see_other("/shop/account")
        }
        Purpose::SecondFactor { account } => match data.account(account) {
            Some(a) if a.issuer == t.iss && a.pcr == t.pcr() => {
                let f = facts("password + Mobile Connect");
                data.update(a.id, |a| a.last_login = Some(f));
                session.account = Some(a.id);
                session.notice = Some("Logged in with your password and your phone.".into());
                see_other("/shop/account")
            }
            _ => pages::message(
                StatusCode::FORBIDDEN,
                "Not logged in",
                "The phone that approved is not the one linked to this account.",
            ),
        },
        Purpose::Pay {
            account,
            order,
            amount,
            context,
            binding_message,
        } => {
            let shown = t.displayed_data.clone().unwrap_or_default();
            let ours = data
                .account(account)
                .is_some_and(|a| a.issuer == t.iss && a.pcr == t.pcr());
            if !ours || !shown.contains(&context) || !shown.contains(&binding_message) {
                return pages::message(
                    StatusCode::FORBIDDEN,
                    "Payment not confirmed",
                    "The approval does not match this payment (another phone, or other details shown).",
                );
            }
            let payment = Payment {
                order,
                amount,
                context,
                binding_message,
                displayed_data: shown,
                acr: t.acr.clone().unwrap_or_default(),
            };
            let f = facts("Mobile Connect (payment)");
            data.update(account, |a| {
                a.payments.push(payment);
                a.last_login = Some(f);
            });
            session.notice = Some("Payment approved on your phone. Thank you!".into());
            see_other("/shop/account")
        }
    }
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// Two-factor login, step one: the password; step two is Mobile Connect with the PCR.
pub async fn password_login(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let account = shop.0.data.by_username(c.username.trim());
    let ok = match account.as_ref().and_then(|a| a.password_hash.clone()) {
        Some(hash) => mc_authn::pin::verify_pin_blocking(c.password, hash).await,
        None => false,
    };
    let resp = match account {
        Some(a) if ok => start(
            &shop,
            &mut b.session,
            Purpose::SecondFactor { account: a.id },
            a.operator.clone(),
        ),
        _ => pages::message(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "Wrong username or password.",
        ),
    };
    b.done(&shop, resp)
}

/// Sets the account's username and password (enables the two-factor login).
pub async fn set_password(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let Some(id) = b.session.account else {
        return b.done(&shop, see_other(super::PATH));
    };
    let username = c.username.trim().to_owned();
    let valid_name = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || x == b'.' || x == b'_' || x == b'-');
    let resp = if !valid_name {
        pages::message(
            StatusCode::BAD_REQUEST,
            "Password not set",
            "The username must be 3 to 32 letters, digits, '.', '_' or '-'.",
        )
    } else if c.password.chars().count() < 8 || c.password.len() > 128 {
        pages::message(
            StatusCode::BAD_REQUEST,
            "Password not set",
            "The password must be 8 to 128 characters.",
        )
    } else {
        match mc_authn::pin::hash_pin_blocking(c.password)
            .await
            .map(|hash| shop.0.data.set_password(id, &username, hash))
        {
            Ok(true) => {
                b.session.notice = Some(format!(
                    "Password set. Next time log in as {username} with it, then approve on your phone."
                ));
                see_other("/shop/account")
            }
            Ok(false) => pages::message(
                StatusCode::CONFLICT,
                "Password not set",
                "That username is taken.",
            ),
            Err(e) => {
                tracing::error!(error = %e, "shop: password hash");
                pages::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Password not set",
                    "Try again.",
                )
            }
        }
    };
    b.done(&shop, resp)
}

/// Pays for the basket: `mc_authz` at the account's operator, with the amount in the
/// `context` and a short code in `binding_message` (both on the phone).
pub async fn pay(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    let mut b = Browser::of(&shop, &headers);
    let Some(a) = b.session.account.and_then(|id| shop.0.data.account(id)) else {
        return b.done(&shop, see_other(super::PATH));
    };
    let order = format!("{}", 1000 + now() % 9000);
    let purpose = Purpose::Pay {
        account: a.id,
        context: format!("Pay {AMOUNT} for {ITEM}, order {order}"),
        binding_message: format!("PAY-{}", short_code()),
        order,
        amount: AMOUNT.into(),
    };
    let resp = start(&shop, &mut b.session, purpose, a.operator.clone());
    b.done(&shop, resp)
}

pub async fn logout(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    let mut b = Browser::of(&shop, &headers);
    b.session = Session {
        notice: Some("Logged out.".into()),
        ..Session::default()
    };
    b.done(&shop, see_other(super::PATH))
}
