//! The one shape every stored CA is shown in, whatever shape it was uploaded in (a
//! `certificateAuthorityDetail`, or a classic `certificateAuthority` alone or in a
//! `certificateBasedAuthConfiguration`): Graph's `certificateAuthorityDetail`, its read-only
//! properties derived from the certificate and its id and creation time from its row.

use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use super::trust::TrustedCa;

/// Graph's `@odata.type` of a CA in the PKI store.
pub const CA_ODATA_TYPE: &str = "#microsoft.graph.certificateAuthorityDetail";

/// `ca` as a `certificateAuthorityDetail`: `thumbprint` (SHA-1), `issuer` (the CA's own name, as
/// the read-only check takes it), `issuerSubjectKeyIdentifier` (its SKI) and
/// `expirationDateTime` from the certificate; `id` and `createdDateTime` (RFC 3339) from its row.
pub fn detail(id: &str, created: &str, ca: &TrustedCa) -> Value {
    let expires = ca
        .info
        .not_after
        .format(&Rfc3339)
        .unwrap_or_else(|_| ca.info.not_after.to_string());
    json!({
        "@odata.type": CA_ODATA_TYPE,
        "id": id,
        "displayName": ca.display_name,
        "certificateAuthorityType": if ca.is_root { "root" } else { "intermediate" },
        "certificate": base64::engine::general_purpose::STANDARD.encode(&ca.info.der),
        "thumbprint": ca.info.sha1.to_uppercase(),
        "issuer": ca.info.subject,
        "issuerSubjectKeyIdentifier": ca.ski.to_uppercase(),
        "expirationDateTime": expires,
        "createdDateTime": created,
        "certificateRevocationListUrl": ca.crl_url,
        "deltaCertificateRevocationListUrl": ca.delta_crl_url,
        "isIssuerHintEnabled": ca.issuer_hint,
    })
}

/// Leaves out of an upload what the service assigns: the id, the times, and the annotations of a
/// response it may have been copied from.
pub fn strip_assigned(entry: &mut Map<String, Value>) {
    entry.retain(|key, _| {
        !matches!(key.as_str(), "id" | "createdDateTime" | "deletedDateTime")
            && (key == "@odata.type" || !key.contains('@'))
    });
}
