//! The shop's own data: customer accounts (found by the operator's PCR) and browser
//! sessions. Kept in memory: the shop is the sandbox's demo of a service provider, not part
//! of the operator's product, and its accounts are meant to start empty with every sandbox
//! run (docs/decisions.md, "The demo shop").

use std::collections::HashMap;
use std::sync::Mutex;

use mc_client::Operator;
use mc_client::authorize::PendingLogin;

/// A customer. A Mobile Connect identity is the pair (issuer, PCR): PCRs are per operator.
#[derive(Clone)]
pub struct Account {
    pub id: u64,
    pub issuer: String,
    pub pcr: String,
    pub operator_name: String,
    /// The operator the account logs in with (for the second factor and payments).
    pub operator: Operator,
    pub username: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    pub last_login: Option<LoginFacts>,
    pub payments: Vec<Payment>,
}

/// What the last login's id_token said.
#[derive(Debug, Clone)]
pub struct LoginFacts {
    pub acr: String,
    pub amr: Vec<String>,
    pub at: i64,
    /// "Mobile Connect", or "password + Mobile Connect" for the two-factor login.
    pub how: String,
}

/// A payment the customer approved on the phone.
#[derive(Debug, Clone)]
pub struct Payment {
    pub order: String,
    pub amount: String,
    pub context: String,
    pub binding_message: String,
    /// `displayed_data` of the id_token: what the phone showed.
    pub displayed_data: String,
    pub acr: String,
}

/// What a round trip to the operator is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// Passwordless login: find or create the account by PCR.
    Login,
    /// Second factor after the password: the PCR must be the account's.
    SecondFactor { account: u64 },
    /// A payment by the logged-in account.
    Pay {
        account: u64,
        order: String,
        amount: String,
        context: String,
        binding_message: String,
    },
}

/// An authorization request under way.
#[derive(Clone)]
pub struct Pending {
    pub purpose: Purpose,
    pub login: PendingLogin,
    pub operator: Operator,
}

/// One browser's session.
#[derive(Clone, Default)]
pub struct Session {
    pub account: Option<u64>,
    /// Waiting for the operator-selection page to come back.
    pub selecting: Option<Purpose>,
    pub pending: Option<Pending>,
    /// A one-time message for the next page.
    pub notice: Option<String>,
}

#[derive(Default)]
struct Data {
    accounts: Vec<Account>,
    sessions: HashMap<String, Session>,
}

/// Most sessions kept: the oldest half is dropped beyond it (a demo bound, not a policy).
const MAX_SESSIONS: usize = 10_000;

/// Accounts and sessions.
#[derive(Default)]
pub struct ShopData(Mutex<Data>);

impl ShopData {
    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        // Every update is a single insert or field write: a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        self.lock().sessions.get(id).cloned()
    }

    pub fn put_session(&self, id: &str, s: Session) {
        let mut d = self.lock();
        if d.sessions.len() >= MAX_SESSIONS && !d.sessions.contains_key(id) {
            let drop: Vec<String> = d.sessions.keys().take(MAX_SESSIONS / 2).cloned().collect();
            for k in drop {
                d.sessions.remove(&k);
            }
        }
        d.sessions.insert(id.to_owned(), s);
    }

    pub fn account(&self, id: u64) -> Option<Account> {
        self.lock().accounts.iter().find(|a| a.id == id).cloned()
    }

    pub fn by_pcr(&self, issuer: &str, pcr: &str) -> Option<Account> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.issuer == issuer && a.pcr == pcr)
            .cloned()
    }

    pub fn by_username(&self, username: &str) -> Option<Account> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.username.as_deref() == Some(username))
            .cloned()
    }

    /// The account of (issuer, PCR), created when new; `true` when it was created.
    pub fn find_or_create(
        &self,
        issuer: &str,
        pcr: &str,
        operator_name: &str,
        operator: &Operator,
    ) -> (Account, bool) {
        let mut d = self.lock();
        if let Some(a) = d
            .accounts
            .iter()
            .find(|a| a.issuer == issuer && a.pcr == pcr)
        {
            return (a.clone(), false);
        }
        let a = Account {
            id: d.accounts.len() as u64 + 1,
            issuer: issuer.to_owned(),
            pcr: pcr.to_owned(),
            operator_name: operator_name.to_owned(),
            operator: operator.clone(),
            username: None,
            password_hash: None,
            last_login: None,
            payments: Vec::new(),
        };
        d.accounts.push(a.clone());
        (a, true)
    }

    /// Applies `f` to account `id`.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut Account)) {
        if let Some(a) = self.lock().accounts.iter_mut().find(|a| a.id == id) {
            f(a);
        }
    }

    /// Sets the account's username and password hash unless another account has the name.
    pub fn set_password(&self, id: u64, username: &str, hash: String) -> bool {
        let mut d = self.lock();
        if d.accounts
            .iter()
            .any(|a| a.id != id && a.username.as_deref() == Some(username))
        {
            return false;
        }
        match d.accounts.iter_mut().find(|a| a.id == id) {
            Some(a) => {
                a.username = Some(username.to_owned());
                a.password_hash = Some(hash);
                true
            }
            None => false,
        }
    }
}
