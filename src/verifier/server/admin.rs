//! The admin API: Graph-shaped paths for the method policy, the certificate authorities, users and
//! groups, and the sign-in log, behind bearer API keys mapped to Entra-like roles. Wrong or missing
//! key: 401; wrong role: 403; a body that does not validate: 400 with a Graph error naming the field.
//! Every write is held to Graph's declared properties and read-only values
//! ([`crate::verifier::graph_schema`]) before it is read; a PATCH changes the properties it names,
//! each replaced whole (a complex value or a collection too), and nothing else.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::odata::{self, ListRequest};
use super::{admin_cas, admin_groups, graph_sign_in, now_text, App};
use crate::secret_text::SecretText;
use crate::verifier::directory::User;
use crate::verifier::graph_schema::{self, GraphType};
use crate::verifier::policy::CbaPolicy;
use crate::verifier::stamps::random_id;
use crate::verifier::store::{Role, Store, StoreError};
use crate::verifier::text_rules::{check_certificate_user_id, check_json_strings, Violation};
use crate::x509::hex;

pub const POLICY_PATH: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";
pub const CAS_PATH: &str =
    "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";

/// Admin bodies are configuration documents, not uploads.
const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            POLICY_PATH,
            get(get_policy).patch(patch_policy).delete(reset_policy),
        )
        .route(CAS_PATH, get(list_cas).post(admin_cas::add_ca))
        .route(
            &format!("{CAS_PATH}/{{id}}"),
            get(admin_cas::get_ca).delete(delete_ca),
        )
        .route(
            "/v1.0/organization/{id}/certificateBasedAuthConfiguration",
            post(admin_cas::add_classic_configuration),
        )
        .route("/v1.0/users", get(list_users).post(create_user))
        .route(
            "/v1.0/users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route(
            "/v1.0/groups",
            get(list_groups).post(admin_groups::create_group),
        )
        .route(
            "/v1.0/groups/{id}",
            get(admin_groups::get_group).delete(admin_groups::delete_group),
        )
        .route("/v1.0/groups/{id}/members", get(admin_groups::list_members))
        .route(
            "/v1.0/groups/{id}/members/$ref",
            post(admin_groups::add_member),
        )
        .route(
            "/v1.0/groups/{id}/members/{user}/$ref",
            delete(admin_groups::remove_member),
        )
        .route("/v1.0/users/{id}/memberOf", get(admin_groups::member_of))
        .route("/v1.0/auditLogs/signIns", get(sign_ins))
        .route("/healthz", get(|| async { "ok\n" }))
        // Relying parties fetch the keys without a client certificate or an API key.
        .route(
            "/.well-known/jwks.json",
            get(|State(app): State<Arc<App>>| async move { Json(app.jwt.jwks()) }),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// A Graph-style error answer.
#[derive(Debug)]
pub struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
    target: Option<String>,
}

impl GraphError {
    pub(super) fn bad_request(message: impl Into<String>, target: Option<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: message.into(),
            target,
        }
    }

    pub(super) fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "Request_ResourceNotFound",
            message: format!("{what} does not exist"),
            target: None,
        }
    }

    /// A store error: conflicts and refusals as Graph answers them, a full or failing disk as
    /// 503 (nothing was written), anything else opaque.
    pub(super) fn store(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { property } => Self::bad_request(
                format!(
                    "Another object with the same value for property {property} already exists."
                ),
                Some(property),
            ),
            StoreError::NotFound => Self::not_found("the object"),
            StoreError::Rejected { field, message } => Self::bad_request(message, Some(field)),
            StoreError::Sql(ref e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
                ) =>
            {
                tracing::error!(error = %error, "admin write failed: storage unavailable");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "ServiceUnavailable",
                    message: "the change could not be stored (storage unavailable); nothing was changed, try again later".into(),
                    target: None,
                }
            }
            other => Self::internal(other),
        }
    }

    /// The error with its target named within `at` (an entry of a collection in the body).
    pub(super) fn within(mut self, at: &str) -> Self {
        self.target = Some(match self.target {
            Some(target) => format!("{at}.{target}"),
            None => at.to_owned(),
        });
        self
    }

    /// A 400 with Graph's own error code for the case (`Request_BadRequest`...).
    pub(super) fn bad_request_coded(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            target: None,
        }
    }

    pub(super) fn invalid(Violation { field, message }: Violation) -> Self {
        Self::bad_request(message, Some(field))
    }

    /// Internal failures: an opaque answer, the detail only in the log.
    pub(super) fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "admin request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerError",
            message: "the request could not be completed".into(),
            target: None,
        }
    }
}

impl From<odata::QueryError> for GraphError {
    fn from(error: odata::QueryError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: error.code,
            message: error.message,
            target: None,
        }
    }
}

impl From<StoreError> for GraphError {
    fn from(error: StoreError) -> Self {
        Self::store(error)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(target) = self.target {
            error["target"] = json!(target);
        }
        (self.status, Json(json!({"error": error}))).into_response()
    }
}

/// The caller, authenticated by API key.
pub struct Caller(Role);

impl Caller {
    /// Whether the caller may do what `needed` may.
    pub(super) fn require(&self, needed: Role) -> Result<(), GraphError> {
        let allowed = match needed {
            Role::Reader => true,
            Role::AuthenticationPolicyAdministrator => {
                matches!(
                    self.0,
                    Role::AuthenticationPolicyAdministrator | Role::GlobalAdministrator
                )
            }
            Role::GlobalAdministrator => self.0 == Role::GlobalAdministrator,
        };
        if allowed {
            Ok(())
        } else {
            Err(GraphError {
                status: StatusCode::FORBIDDEN,
                code: "Authorization_RequestDenied",
                message: format!(
                    "insufficient privileges: this needs the {} role, and the key has {}",
                    needed.name(),
                    self.0.name()
                ),
                target: None,
            })
        }
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = GraphError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated = |message: &str| GraphError {
            status: StatusCode::UNAUTHORIZED,
            code: "InvalidAuthenticationToken",
            message: message.to_owned(),
            target: None,
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                unauthenticated("an API key is required: Authorization: Bearer <key>")
            })?;
        let hash = key_hash(presented);
        let keys = app.store.api_keys().map_err(GraphError::internal)?;
        // Compare every stored hash in constant time, so timing says nothing about which is close.
        let mut role = None;
        for (stored, stored_role) in &keys {
            if bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
                role = Some(*stored_role);
            }
        }
        role.map(Caller)
            .ok_or_else(|| unauthenticated("the API key is not valid"))
    }
}

/// API keys are stored as the SHA-256 of the key.
pub fn key_hash(key: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref())
}

/// Makes a new API key for `role` in `store`; returns the key, which is shown once and stored
/// only hashed.
pub fn create_api_key(
    store: &Store,
    role: Role,
    name: &str,
) -> Result<SecretText, crate::verifier::store::StoreError> {
    let key = SecretText::new(format!("cak_{}{}", random_id(), random_id()));
    store.add_api_key(&key_hash(key.expose()), role, name, &now_text())?;
    Ok(key)
}

/// The body as JSON, every string in it within the stored-text rules.
pub(super) fn json_body(body: &[u8]) -> Result<Value, GraphError> {
    let value = serde_json::from_slice(body)
        .map_err(|e| GraphError::bad_request(format!("the body is not JSON: {e}"), None))?;
    check_json_strings(&value).map_err(GraphError::invalid)?;
    Ok(value)
}

/// The body as a JSON object.
pub(super) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, GraphError> {
    match json_body(body)? {
        Value::Object(object) => Ok(object),
        _ => Err(GraphError::bad_request(
            "the body must be a JSON object",
            None,
        )),
    }
}

/// A typed body, its strings checked first, then its properties against `graph_type`'s.
pub(super) fn typed_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    graph_type: &GraphType,
) -> Result<T, GraphError> {
    let value = json_body(body)?;
    graph_schema::check(&value, graph_type).map_err(GraphError::invalid)?;
    serde_json::from_value(value).map_err(|e| GraphError::bad_request(e.to_string(), None))
}

/// A user as the admin API stores it: [`User::validate`], and every certificateUserIds value in
/// Entra's grammar.
fn validate_user(user: &User) -> Result<(), GraphError> {
    user.validate().map_err(GraphError::invalid)?;
    for (j, value) in user
        .authorization_info
        .certificate_user_ids
        .iter()
        .enumerate()
    {
        check_certificate_user_id(&format!("authorizationInfo.certificateUserIds[{j}]"), value)
            .map_err(GraphError::invalid)?;
    }
    Ok(())
}

async fn get_policy(
    caller: Caller,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let policy = app.store.policy().map_err(GraphError::internal)?;
    Ok(Json(
        serde_json::to_value(policy).map_err(GraphError::internal)?,
    ))
}

async fn patch_policy(
    caller: Caller,
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let patch = json_object(&body)?;
    graph_schema::check_object(&patch, &graph_schema::X509_METHOD_CONFIGURATION)
        .map_err(GraphError::invalid)?;
    if patch.get("@odata.type").and_then(Value::as_str) != Some(crate::verifier::policy::ODATA_TYPE)
    {
        return Err(GraphError::bad_request(
            format!(
                "the body must carry \"@odata.type\": \"{}\"",
                crate::verifier::policy::ODATA_TYPE
            ),
            Some("@odata.type".into()),
        ));
    }
    // Read, merge and write in one transaction: concurrent PATCHes of different fields all stay.
    app.store.update_policy(|current| {
        graph_schema::check_key(&patch, &current.id).map_err(GraphError::invalid)?;
        let mut merged = serde_json::to_value(current).map_err(GraphError::internal)?;
        for (key, value) in patch {
            merged[key] = value;
        }
        let text = serde_json::to_vec(&merged).map_err(GraphError::internal)?;
        CbaPolicy::from_json(&text, "request body")
            .map_err(|e| GraphError::bad_request(e.message.clone(), Some(e.field.clone())))
    })?;
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset_policy(
    caller: Caller,
    State(app): State<Arc<App>>,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    app.store.reset_policy().map_err(GraphError::internal)?;
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_cas(
    caller: Caller,
    State(app): State<Arc<App>>,
    list: ListRequest,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let query = list.query(&odata::CERTIFICATE_AUTHORITIES)?;
    let cas = app
        .store
        .certificate_authorities()
        .map_err(GraphError::internal)?;
    let keyed = cas
        .into_iter()
        .map(|ca| (ca["id"].as_str().unwrap_or_default().to_owned(), ca));
    Ok(Json(query.respond_all(keyed.collect())))
}

async fn delete_ca(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::GlobalAdministrator)?;
    if !app.store.delete_certificate_authority(&id)? {
        return Err(GraphError::not_found("the certificate authority"));
    }
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(
    caller: Caller,
    State(app): State<Arc<App>>,
    list: ListRequest,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let query = list.query(&odata::USERS)?;
    let mut keyed = Vec::new();
    for user in app.store.users()? {
        let key = format!("{}\n{}", user.user_principal_name.to_lowercase(), user.id);
        keyed.push((
            key,
            serde_json::to_value(user).map_err(GraphError::internal)?,
        ));
    }
    Ok(Json(query.respond_all(keyed)))
}

async fn get_user(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<User>, GraphError> {
    caller.require(Role::Reader)?;
    app.store
        .user(&id)?
        .map(Json)
        .ok_or_else(|| GraphError::not_found("the user"))
}

async fn create_user(
    caller: Caller,
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<User>), GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let mut user: User = typed_body(&body, &graph_schema::USER)?;
    if user.id.is_empty() {
        user.id = user.user_principal_name.clone();
    }
    validate_user(&user)?;
    app.store.create_user(&user)?;
    app.refresh().map_err(GraphError::internal)?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn patch_user(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let patch = json_object(&body)?;
    graph_schema::check_object(&patch, &graph_schema::USER).map_err(GraphError::invalid)?;
    app.store
        .update_user(&id, |current| {
            graph_schema::check_key(&patch, &current.id).map_err(GraphError::invalid)?;
            let mut merged = serde_json::to_value(&current).map_err(GraphError::internal)?;
            for (key, value) in patch {
                merged[key] = value;
            }
            let mut user: User = serde_json::from_value(merged)
                .map_err(|e| GraphError::bad_request(e.to_string(), None))?;
            user.id = current.id;
            validate_user(&user)?;
            Ok(user)
        })
        .map_err(|e: GraphError| match e.status {
            StatusCode::NOT_FOUND => GraphError::not_found("the user"),
            _ => e,
        })?;
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    if !app.store.delete_user(&id)? {
        return Err(GraphError::not_found("the user"));
    }
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(
    caller: Caller,
    State(app): State<Arc<App>>,
    list: ListRequest,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let query = list.query(&odata::GROUPS)?;
    let mut keyed = Vec::new();
    for group in app.store.groups()? {
        let key = group.id.clone();
        keyed.push((
            key,
            serde_json::to_value(group).map_err(GraphError::internal)?,
        ));
    }
    Ok(Json(query.respond_all(keyed)))
}

/// The sign-in log in Graph's `signIn` shape, newest first, with the OData options.
async fn sign_ins(
    caller: Caller,
    State(app): State<Arc<App>>,
    list: ListRequest,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let query = list.query(&odata::SIGN_INS)?;
    let mut page = query.collector();
    let seek = query.seek().and_then(graph_sign_in::parse_position);
    app.store
        .each_sign_in(seek, |record| {
            page.push(
                graph_sign_in::position(&record),
                graph_sign_in::to_graph(&record),
            )
        })
        .map_err(GraphError::internal)?;
    Ok(Json(page.finish()))
}
