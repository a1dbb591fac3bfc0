//! A sign-in log record as Graph's `signIn` resource shows it (`GET /v1.0/auditLogs/signIns`):
//! `status` a `signInStatus` with the AADSTS number as its integer `errorCode` (0 on success),
//! one `authenticationDetails` step for the certificate, `authenticationRequirement` from the
//! strength reached, `ipAddress`; and the CBA facts Graph's log does not itemise (`certificate`,
//! `usernameBinding`, `authenticationRule`, `revocation`, `authenticationStrength`) under the names
//! the log has always used. The stored record keeps its own form; this is the view.

use serde_json::{json, Value};

use crate::verifier::outcome::{AuthenticationStrength, ErrorCode};
use crate::verifier::store::SignInRecord;

/// Graph's name for the method, as the Entra sign-in log shows it for CBA.
pub const AUTHENTICATION_METHOD: &str = "X.509 Certificate";

/// Every top-level property of the view (what `$select` may name).
pub const PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "userPrincipalName",
    "ipAddress",
    "isInteractive",
    "status",
    "authenticationRequirement",
    "authenticationDetails",
    "authenticationStrength",
    "certificate",
    "usernameBinding",
    "authenticationRule",
    "revocation",
];

/// The record as a Graph `signIn`.
pub fn to_graph(record: &SignInRecord) -> Value {
    let succeeded = record.status == "success";
    let multifactor = record
        .authentication_strength
        .as_deref()
        .and_then(AuthenticationStrength::from_wire)
        .is_some_and(AuthenticationStrength::is_multifactor);
    let error_code = match (&record.error_code, succeeded) {
        (_, true) => 0,
        (Some(code), false) => {
            ErrorCode::from_wire(code).map_or(-1, |code| i64::from(code.number()))
        }
        (None, false) => -1,
    };
    let additional_details = match (succeeded, multifactor) {
        (true, true) => "MFA requirement satisfied by the X.509 certificate".to_owned(),
        (true, false) => "Single-factor sign-in with the X.509 certificate".to_owned(),
        (false, _) => record.error_code.clone().unwrap_or_default(),
    };
    json!({
        "id": record.id,
        "createdDateTime": record.created_date_time,
        "userPrincipalName": record.user_principal_name,
        "ipAddress": record.client_address,
        "isInteractive": true,
        "status": {
            "errorCode": error_code,
            "failureReason": record.failure_reason,
            "additionalDetails": additional_details,
        },
        "authenticationRequirement": if multifactor {
            "multiFactorAuthentication"
        } else {
            "singleFactorAuthentication"
        },
        "authenticationDetails": [{
            "authenticationMethod": AUTHENTICATION_METHOD,
            "authenticationMethodDetail": record
                .certificate
                .as_ref()
                .and_then(|c| c.get("thumbprint"))
                .cloned(),
            "authenticationStepDateTime": record.created_date_time,
            "authenticationStepRequirement": "Primary authentication",
            "authenticationStepResultDetail": if succeeded {
                "methodSucceeded".to_owned()
            } else {
                record.failure_reason.clone().unwrap_or_default()
            },
            "succeeded": succeeded,
        }],
        "authenticationStrength": record.authentication_strength,
        "certificate": record.certificate,
        "usernameBinding": record.username_binding,
        "authenticationRule": record.authentication_rule,
        "revocation": record.revocation,
    })
}

/// The record's place in the log's order (newest first): its time, then its id.
pub fn position(record: &SignInRecord) -> String {
    format!("{}\n{}", record.created_date_time, record.id)
}

/// A [`position`] back as (time, id).
pub fn parse_position(position: &str) -> Option<(&str, &str)> {
    position.split_once('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_aadsts_number_and_successes_zero() {
        let mut record = SignInRecord {
            id: "r1".into(),
            created_date_time: "2026-03-01T10:00:00.0000000Z".into(),
            user_principal_name: "bob@woodgrove.com".into(),
            client_address: "127.0.0.1".into(),
            status: "failure".into(),
            error_code: Some("AADSTS500171".into()),
            failure_reason: Some("the certificate is revoked".into()),
            authentication_strength: None,
            certificate: Some(json!({"thumbprint": "AB12"})),
            username_binding: None,
            authentication_rule: None,
            revocation: Value::Null,
        };
        let failed = to_graph(&record);
        assert_eq!(failed["status"]["errorCode"], 500171);
        assert_eq!(failed["status"]["additionalDetails"], "AADSTS500171");
        assert_eq!(failed["authenticationDetails"][0]["succeeded"], false);
        assert_eq!(
            failed["authenticationDetails"][0]["authenticationMethodDetail"],
            "AB12"
        );
        assert_eq!(
            failed["authenticationRequirement"],
            "singleFactorAuthentication"
        );
        record.status = "success".into();
        record.error_code = None;
        record.failure_reason = None;
        record.authentication_strength = Some("multiFactor".into());
        let succeeded = to_graph(&record);
        assert_eq!(succeeded["status"]["errorCode"], 0);
        assert_eq!(
            succeeded["authenticationRequirement"],
            "multiFactorAuthentication"
        );
        let keys: Vec<&str> = succeeded
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, PROPERTIES);
        assert_eq!(
            parse_position(&position(&record)),
            Some(("2026-03-01T10:00:00.0000000Z", "r1"))
        );
    }
}
