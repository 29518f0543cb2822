//! The sandbox's Discovery data: the sandbox operator (its endpoints from the gateway's own
//! metadata, its MSISDN encryption key from the gateway's JWKS), the test number range
//! +44 7700 900xxx, and the demo service provider's discovery registration with its
//! credentials at the operator (the gateway client id and secret).

use std::collections::BTreeMap;

use mc_discovery::crypto::Secrets;
use mc_discovery::registry::{self, AppSpec, CredentialSpec, OperatorSpec, RegistryError};
use mc_gateway::state::AppState;
use mc_store::{DiscoveryStore, NumberEntry, NumberKind};

use crate::seed::{DEMO_CLIENT_ID, SandboxInfo};

/// The sandbox operator's id (`serving_operator`).
pub const OPERATOR_ID: &str = "sandbox";
/// MCC/MNC of the sandbox operator: `901_01`, the test code of the GSMA sandbox (digest §13).
pub const MCC: &str = "901";
pub const MNC: &str = "01";
/// The test range: every +44 7700 900xxx number.
pub const RANGE: u64 = 447_700_900;

/// Operator endpoints from the gateway's metadata document.
fn links_of(state: &AppState) -> Result<BTreeMap<String, String>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(&state.metadata_json).map_err(|e| format!("gateway metadata: {e}"))?;
    let mut links = BTreeMap::new();
    for (rel, key) in [
        ("issuer", "issuer"),
        ("authorization", "authorization_endpoint"),
        ("token", "token_endpoint"),
        ("userinfo", "userinfo_endpoint"),
        ("premiuminfo", "premiuminfo_endpoint"),
        ("jwks", "jwks_uri"),
        ("tokenrevoke", "revocation_endpoint"),
    ] {
        if let Some(href) = doc.get(key).and_then(|v| v.as_str()) {
            links.insert(rel.to_owned(), href.to_owned());
        }
    }
    if let Some(issuer) = links.get("issuer").cloned() {
        links.insert(
            "openid-configuration".into(),
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
        );
    }
    if let Some(scopes) = doc.get("scopes_supported").and_then(|v| v.as_array()) {
        let list: Vec<&str> = scopes.iter().filter_map(|s| s.as_str()).collect();
        links.insert("scope".into(), list.join(" "));
    }
    Ok(links)
}

/// Creates or refreshes the Discovery data of the sandbox and fills in the demo service
/// provider's discovery credentials in `info` (kept across restarts like its client
/// secret: the store only has the hash).
pub async fn seed(
    store: &dyn DiscoveryStore,
    secrets: &Secrets,
    state: &AppState,
    discovery_url: &str,
    previous: Option<&SandboxInfo>,
    info: &mut SandboxInfo,
) -> Result<(), String> {
    let e = |e: RegistryError| format!("discovery seed: {e}");
    let spec = OperatorSpec {
        id: OPERATOR_ID.into(),
        mcc: MCC.into(),
        mnc: MNC.into(),
        name: "Sandbox Operator".into(),
        country: "United Kingdom".into(),
        currency: "GBP".into(),
        links: links_of(state)?,
        // Follows the gateway's current key (it may have rotated since the last start).
        encryption_jwk: Some(state.keys.jwks()),
        enabled: true,
    };
    match store
        .get_operator(OPERATOR_ID)
        .await
        .map_err(|e| e.to_string())?
    {
        None => registry::create_operator(store, &spec).await.map(|_| ()),
        Some(_) => registry::update_operator(store, OPERATOR_ID, &spec)
            .await
            .map(|_| ()),
    }
    .map_err(e)?;
    store
        .upsert_numbers(
            &[NumberEntry {
                kind: NumberKind::Range,
                number: RANGE,
                operator_id: OPERATOR_ID.into(),
            }],
            0,
        )
        .await
        .map_err(|e| e.to_string())?;

    let Some(sp) = info
        .service_providers
        .iter_mut()
        .find(|s| s.client_id == DEMO_CLIENT_ID)
    else {
        return Err("discovery seed: the demo service provider is missing".into());
    };
    let app = AppSpec {
        client_id: Some(DEMO_CLIENT_ID.into()),
        name: sp.name.clone(),
        short_name: sp.short_name.clone(),
        redirect_uris: sp.redirect_uris.clone(),
        enabled: true,
    };
    let known = previous
        .and_then(|p| {
            p.service_providers
                .iter()
                .find(|s| s.client_id == DEMO_CLIENT_ID)
        })
        .and_then(|s| s.discovery_client_secret.clone());
    let secret = match store
        .get_discovery_app(DEMO_CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
    {
        None => registry::create_app(store, &app, None).await.map_err(e)?.1,
        Some(_) => {
            registry::update_app(store, DEMO_CLIENT_ID, &app)
                .await
                .map_err(e)?;
            match known {
                Some(s) => s,
                None => registry::rotate_app_secret(store, DEMO_CLIENT_ID)
                    .await
                    .map_err(e)?,
            }
        }
    };
    registry::put_credential(
        store,
        secrets,
        DEMO_CLIENT_ID,
        OPERATOR_ID,
        &CredentialSpec {
            client_id: sp.client_id.clone(),
            client_secret: sp.client_secret.clone(),
            client_name: Some(sp.short_name.clone()),
        },
    )
    .await
    .map_err(e)?;
    sp.discovery_client_id = Some(DEMO_CLIENT_ID.into());
    sp.discovery_client_secret = Some(secret);
    info.discovery_url = Some(format!(
        "{}/v2/discovery",
        discovery_url.trim_end_matches('/')
    ));
    Ok(())
}

/// Adds the extra virtual operators to Discovery (call after [`seed`]): each operator with
/// its endpoints and MSISDN encryption key, its number ranges and ported-in numbers, and
/// the demo SP's credentials at it. Reload the Discovery snapshot afterwards.
pub async fn seed_operators(
    store: &dyn DiscoveryStore,
    secrets: &Secrets,
    extra: &[crate::operators::VirtualOperator],
) -> Result<(), String> {
    let e = |e: RegistryError| format!("discovery seed: {e}");
    for op in extra {
        let def = op.def;
        let spec = OperatorSpec {
            id: def.id.into(),
            mcc: def.mcc.into(),
            mnc: def.mnc.into(),
            name: def.name.into(),
            country: def.country.into(),
            currency: def.currency.into(),
            links: links_of(&op.state)?,
            encryption_jwk: Some(op.state.keys.jwks()),
            enabled: true,
        };
        match store
            .get_operator(def.id)
            .await
            .map_err(|e| e.to_string())?
        {
            None => registry::create_operator(store, &spec).await.map(|_| ()),
            Some(_) => registry::update_operator(store, def.id, &spec)
                .await
                .map(|_| ()),
        }
        .map_err(e)?;
        let entries: Vec<NumberEntry> = def
            .ranges
            .iter()
            .map(|&number| NumberEntry {
                kind: NumberKind::Range,
                number,
                operator_id: def.id.into(),
            })
            .chain(def.ported_in.iter().map(|&number| NumberEntry {
                kind: NumberKind::Ported,
                number,
                operator_id: def.id.into(),
            }))
            .collect();
        store
            .upsert_numbers(&entries, 0)
            .await
            .map_err(|e| e.to_string())?;
        registry::put_credential(
            store,
            secrets,
            DEMO_CLIENT_ID,
            def.id,
            &CredentialSpec {
                client_id: DEMO_CLIENT_ID.into(),
                client_secret: op.client_secret.clone(),
                client_name: Some(crate::seed::DEMO_SHORT_NAME.into()),
            },
        )
        .await
        .map_err(e)?;
    }
    Ok(())
}
