//! The certauth listener's routes: `POST /certauth/signin`, `GET /.well-known/jwks.json` and
//! `GET /healthz`. One place turns a decision into an HTTP answer.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{App, Connection};
use crate::pki::jwt::{self, certificate_thumbprint};
use crate::verifier::decide::Decision;
use crate::verifier::outcome::{AuthenticationStrength, ErrorCode};
use crate::verifier::stamps::random_id;
use crate::verifier::store::{log_time, Retention, SignInRecord};

/// Sign-in bodies are one short JSON object.
const BODY_LIMIT: usize = 16 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/certauth/signin", post(sign_in))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

#[derive(Debug, Deserialize)]
struct SignInBody {
    username: String,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn jwks(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.jwt.jwks())
}

/// A refusal, with the HTTP status its code carries.
fn failure(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    failure_with(status, code, message)
}

fn failure_with(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "failure", "errorCode": code, "message": message})),
    )
        .into_response()
}

async fn sign_in(
    State(app): State<Arc<App>>,
    Extension(connection): Extension<Connection>,
    body: Result<Json<SignInBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return failure(
            ErrorCode::MissingParameter,
            "the request body must be JSON with a \"username\"",
        );
    };
    let Some(leaf) = connection.client_chain.first() else {
        return failure(
            ErrorCode::CertificateValidationFailed,
            "no client certificate was presented",
        );
    };
    let now = OffsetDateTime::now_utc();
    let decision = app.engine().decide(leaf, &body.username, now).await;
    // No answer leaves before the attempt is on record: an attempt that cannot be logged (a full
    // disk) is refused, as admin writes are.
    if let Err(e) = log(&app, &connection, &body.username, &decision, now) {
        tracing::error!(error = %e, "writing the sign-in log; the sign-in is refused");
        return failure(
            ErrorCode::Transient,
            "the sign-in could not be recorded in the sign-in log, so it is refused; try again later",
        );
    }
    if !decision.succeeded() {
        // A refusal always carries its code; none would be a bug, and fails closed as one.
        let code = decision
            .error_code
            .unwrap_or(ErrorCode::CertificateValidationFailed);
        return failure(code, &decision.message);
    }
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let expires = now + app.token_lifetime;
    let claims = token_claims(&decision, leaf, now, expires);
    let token = match app.jwt.sign(&claims) {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "signing a sign-in token");
            // A server fault, not a storage one: 500 (`docs/signin-protocol.md`).
            return failure_with(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Transient,
                "a transient error occurred; try again",
            );
        }
    };
    let expires_at = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Json(json!({
        "status": "success",
        "userPrincipalName": decision.user_principal_name,
        "authenticationStrength": decision.authentication_strength,
        "usernameBinding": decision.username_binding,
        "authenticationRule": decision.authentication_rule,
        "certificate": decision.certificate,
        "token": token,
        "expiresAt": expires_at,
    }))
    .into_response()
}

/// The sign-in token's claims (`docs/signin-protocol.md`): bound to the certificate by
/// `cnf.x5t#S256`.
fn token_claims(
    decision: &Decision,
    leaf: &[u8],
    now: OffsetDateTime,
    expires: OffsetDateTime,
) -> serde_json::Value {
    let multifactor = decision
        .authentication_strength
        .is_some_and(AuthenticationStrength::is_multifactor);
    let mut amr = vec!["x509"];
    if multifactor {
        amr.push("mfa");
    }
    json!({
        "iss": jwt::ISSUER,
        "aud": jwt::AUDIENCE,
        "sub": decision.user_principal_name,
        "upn": decision.user_principal_name,
        "amr": amr,
        "iat": now.unix_timestamp(),
        "nbf": now.unix_timestamp(),
        "exp": expires.unix_timestamp(),
        "jti": random_id(),
        "cnf": {"x5t#S256": certificate_thumbprint(leaf)},
    })
}

/// Every attempt goes to the sign-in log, within the configured retention.
fn log(
    app: &App,
    connection: &Connection,
    username: &str,
    decision: &Decision,
    now: OffsetDateTime,
) -> Result<(), crate::verifier::store::StoreError> {
    let record = SignInRecord {
        id: random_id(),
        created_date_time: log_time(now),
        user_principal_name: username.to_owned(),
        client_address: connection.client_address.ip().to_string(),
        status: if decision.succeeded() {
            "success"
        } else {
            "failure"
        }
        .to_owned(),
        error_code: decision.error_code.map(|code| code.as_str().to_owned()),
        failure_reason: (!decision.succeeded()).then(|| decision.message.clone()),
        authentication_strength: decision
            .authentication_strength
            .map(|strength| strength.as_str().to_owned()),
        certificate: decision
            .certificate
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok()),
        username_binding: decision
            .username_binding
            .as_ref()
            .and_then(|b| serde_json::to_value(b).ok()),
        authentication_rule: decision
            .authentication_rule
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
        revocation: serde_json::to_value(&decision.revocation).unwrap_or_default(),
    };
    let retention = Retention {
        max_age: app.settings.log_retention,
        max_rows: app.settings.log_max_rows,
    };
    app.store.log_sign_in(&record, retention, now)
}
