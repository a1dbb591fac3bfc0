//! The certauth sign-in protocol as the agent sees it (`docs/signin-protocol.md`):
//! `POST /certauth/signin` with `{"username": ...}` over mutual TLS; the answer is a signed result
//! or an Entra-style error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret_text::SecretText;

/// The path the sign-in is posted to when the endpoint URL has none.
pub const SIGN_IN_PATH: &str = "/certauth/signin";

#[derive(Debug, Clone, Serialize)]
pub struct SignInRequestBody<'a> {
    pub username: &'a str,
}

/// The server's answer, success or failure. Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SignInAnswer {
    pub status: String,
    pub user_principal_name: Option<String>,
    /// `singleFactor` or `multiFactor`.
    pub authentication_strength: Option<String>,
    /// The username binding that matched (Graph's x509CertificateUserBinding shape).
    pub username_binding: Option<Value>,
    /// The authentication binding rule that set the strength, if one did.
    pub authentication_rule: Option<Value>,
    pub certificate: Option<Value>,
    /// The issued token: sent on as it is, never shown by `Debug`.
    pub token: Option<SecretText>,
    pub expires_at: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl SignInAnswer {
    pub fn succeeded(&self) -> bool {
        self.status == "success"
    }
}

/// The sign-in URL for an endpoint: its own path if it has one, else `/certauth/signin`.
pub fn sign_in_url(endpoint: &reqwest::Url) -> reqwest::Url {
    let mut url = endpoint.clone();
    if url.path().is_empty() || url.path() == "/" {
        url.set_path(SIGN_IN_PATH);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_sign_in_path() {
        let url = reqwest::Url::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            sign_in_url(&url).as_str(),
            "https://127.0.0.1:8443/certauth/signin"
        );
        let url = reqwest::Url::parse("https://host/custom/path").unwrap();
        assert_eq!(sign_in_url(&url).as_str(), "https://host/custom/path");
    }

    #[test]
    fn answers_parse_with_unknown_fields() {
        let answer: SignInAnswer = serde_json::from_str(
            r#"{"status":"failure","errorCode":"AADSTS50034","message":"no such user","@odata.context":"x"}"#,
        )
        .unwrap();
        assert!(!answer.succeeded());
        assert_eq!(answer.error_code.as_deref(), Some("AADSTS50034"));
        assert_eq!(answer.extra["@odata.context"], "x");
    }

    #[test]
    fn an_answer_printed_with_debug_hides_its_token() {
        let answer: SignInAnswer = serde_json::from_str(
            r#"{"status":"success","token":"eyJhbGciOiJFUzI1NiJ9.claims.signature"}"#,
        )
        .unwrap();
        let shown = format!("{answer:?}");
        assert!(!shown.contains("claims.signature"), "{shown}");
        // Serialized (stdout, the agent's cache), it is whole.
        assert!(serde_json::to_string(&answer)
            .unwrap()
            .contains("eyJhbGciOiJFUzI1NiJ9.claims.signature"));
    }
}
