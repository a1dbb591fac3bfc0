//! The admin API's CA writes and single reads: a CA uploaded alone (`certificateAuthorityDetail`,
//! or the classic `certificateAuthority`), the classic store's envelope
//! (`POST /v1.0/organization/{id}/certificateBasedAuthConfiguration`, each of its CAs stored as
//! the others are), and `GET` of one CA. Every CA reads back in the one shape of
//! [`crate::verifier::ca_detail`], whatever shape it was uploaded in.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::admin::{json_body, Caller, GraphError};
use super::{now_text, App};
use crate::verifier::ca_detail;
use crate::verifier::graph_schema::{self, GraphType};
use crate::verifier::stamps::{random_guid, random_id};
use crate::verifier::store::{Role, StoreError};
use crate::verifier::trust::{TrustStore, TrustStoreError};

/// `POST {CAS_PATH}`: one CA, in either of Graph's shapes.
pub async fn add_ca(
    caller: Caller,
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    // Only a Global Administrator changes the CAs, as in Entra.
    caller.require(Role::GlobalAdministrator)?;
    let entry = json_body(&body)?;
    let entry = prepare(entry, graph_schema::certificate_authority_type)?;
    store(&app, std::slice::from_ref(&entry))?;
    Ok((StatusCode::CREATED, Json(entry.1)))
}

/// `POST /v1.0/organization/{id}/certificateBasedAuthConfiguration`: the classic store's
/// `{"certificateAuthorities": [...]}`, every CA in it added in one transaction (all or none),
/// each kept as a CA uploaded alone is. The verifier has one organization, so any id names it.
pub async fn add_classic_configuration(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(_organization): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    caller.require(Role::GlobalAdministrator)?;
    let body = json_body(&body)?;
    graph_schema::check(&body, &graph_schema::CERTIFICATE_BASED_AUTH_CONFIGURATION)
        .map_err(GraphError::invalid)?;
    let entries = match body.get("certificateAuthorities") {
        Some(Value::Array(entries)) if !entries.is_empty() => entries.clone(),
        _ => {
            return Err(GraphError::bad_request(
                "certificateAuthorities must list at least one certificateAuthority",
                Some("certificateAuthorities".into()),
            ))
        }
    };
    let mut prepared = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let entry = prepare(entry, |_| graph_schema::classic_certificate_authority())
            .map_err(|e| e.within(&format!("certificateAuthorities[{i}]")))?;
        prepared.push(entry);
    }
    store(&app, &prepared)?;
    let stored: Vec<Value> = prepared.into_iter().map(|(_, entry)| entry).collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": random_guid(), "certificateAuthorities": stored})),
    ))
}

/// `GET {CAS_PATH}/{id}`.
pub async fn get_ca(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    app.store
        .certificate_authority(&id)?
        .map(Json)
        .ok_or_else(|| GraphError::not_found("the certificate authority"))
}

/// One CA upload checked whole (declared properties, the certificate, the read-only properties
/// derived from it) and made ready to store: what the service assigns (the id, the times, the
/// annotations of a response it was copied from) is not taken from it. `(id, entry)`.
fn prepare(
    entry: Value,
    graph_type: impl FnOnce(&Value) -> &'static GraphType,
) -> Result<(String, Value), GraphError> {
    graph_schema::check(&entry, graph_type(&entry)).map_err(GraphError::invalid)?;
    // Parsed alone first, so a bad upload is named before the store is touched.
    let parsed = TrustStore::from_json(
        json!([entry.clone()]).to_string().as_bytes(),
        "request body",
    )
    .map_err(|e| GraphError::bad_request(e.to_string(), None))?;
    let Value::Object(mut entry) = entry else {
        return Err(GraphError::bad_request(
            "the body must be a JSON object",
            None,
        ));
    };
    if let Some(ca) = parsed.cas().first() {
        graph_schema::check_derived_ca_properties(&entry, &ca.info).map_err(GraphError::invalid)?;
    }
    ca_detail::strip_assigned(&mut entry);
    let id = random_id();
    entry.insert("id".into(), json!(id));
    Ok((id, Value::Object(entry)))
}

/// Stores prepared CAs in one transaction, against the CAs stored now (Entra's expired-CA rule,
/// duplicates), and reloads the tenant.
fn store(app: &App, entries: &[(String, Value)]) -> Result<(), GraphError> {
    // The schema keeps one row per SKI and certificate, so of identical uploads racing, one wins.
    app.store
        .add_certificate_authorities_checked(entries, &now_text(), |store, ca| {
            store
                .add(ca, OffsetDateTime::now_utc())
                .map_err(|e| match e {
                    TrustStoreError::Duplicate { .. } => GraphError::store(StoreError::Conflict {
                        property: "certificate".into(),
                    }),
                    other => GraphError::bad_request(other.to_string(), Some("certificate".into())),
                })
        })?;
    app.refresh().map_err(GraphError::internal)?;
    Ok(())
}
