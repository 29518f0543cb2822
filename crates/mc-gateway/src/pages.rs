//! Server-rendered pages (askama, auto-escaped).

use askama::Template;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub error: &'a str,
    pub description: &'a str,
}

#[derive(Template)]
#[template(path = "wait.html")]
pub struct WaitPage<'a> {
    pub wait_path: &'a str,
    pub client_name: &'a str,
    pub context: Option<&'a str>,
    pub binding_message: Option<&'a str>,
    pub masked_msisdn: &'a str,
    pub loa: &'a str,
    /// The passkey authenticator is on: load its script (`routes::passkey`).
    pub passkeys: bool,
    /// An SMS code is expected for this login: show its form (`routes::sms`).
    pub sms_otp: bool,
}

#[derive(Template)]
#[template(path = "number.html")]
pub struct NumberPage<'a> {
    pub number_path: &'a str,
    pub client_name: &'a str,
    pub message: Option<&'a str>,
}
