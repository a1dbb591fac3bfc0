//! The Entra certificateUserIds strings a certificate would match, one per binding form
//! (`reference/entra-cba-spec.md` §1.1–1.3).
//!
//! Choices where the sources disagree: `<SR>` is the serial's DER content octets byte-reversed
//! (little-endian, as `certutil -dump` shows and Entra's how-to says) unless big-endian is asked for;
//! SKI and SHA1-PUKEY are uppercase hex, as Microsoft's own script writes them.

use serde::Serialize;

use super::cert_info::CertInfo;

/// The seven username-binding fields of Entra CBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum BindingField {
    PrincipalName,
    #[serde(rename = "RFC822Name")]
    Rfc822Name,
    IssuerAndSubject,
    Subject,
    #[serde(rename = "SubjectKeyIdentifier")]
    Ski,
    #[serde(rename = "SHA1PublicKey")]
    Sha1PublicKey,
    IssuerAndSerialNumber,
}

impl BindingField {
    pub const ALL: [BindingField; 7] = [
        Self::PrincipalName,
        Self::Rfc822Name,
        Self::IssuerAndSubject,
        Self::Subject,
        Self::Ski,
        Self::Sha1PublicKey,
        Self::IssuerAndSerialNumber,
    ];

    /// High-affinity fields identify one certificate; low-affinity ones a name it carries.
    pub fn is_high_affinity(self) -> bool {
        matches!(
            self,
            Self::Ski | Self::Sha1PublicKey | Self::IssuerAndSerialNumber
        )
    }
}

/// How `<SR>` orders the serial's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerialOrder {
    /// Byte-reversed, as Entra's how-to and `certutil -dump` show it.
    #[default]
    LittleEndian,
    /// DER order, as Microsoft's PowerShell helper writes it.
    BigEndian,
}

/// One certificateUserIds value and the binding field it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateUserId {
    pub field: BindingField,
    pub value: String,
}

/// Every value the certificate yields, in [`BindingField::ALL`] order. Fields absent from the
/// certificate (no UPN, no SKI...) yield nothing.
pub fn certificate_user_ids(cert: &CertInfo, order: SerialOrder) -> Vec<CertificateUserId> {
    BindingField::ALL
        .into_iter()
        .filter_map(|field| {
            certificate_user_id(cert, field, order).map(|value| CertificateUserId { field, value })
        })
        .collect()
}

/// The value one binding field yields, if the certificate has that field.
pub fn certificate_user_id(
    cert: &CertInfo,
    field: BindingField,
    order: SerialOrder,
) -> Option<String> {
    Some(match field {
        BindingField::PrincipalName => format!("X509:<PN>{}", cert.upns.first()?),
        BindingField::Rfc822Name => format!("X509:<RFC822>{}", cert.rfc822_names.first()?),
        BindingField::IssuerAndSubject => format!("X509:<I>{}<S>{}", cert.issuer, cert.subject),
        BindingField::Subject => format!("X509:<S>{}", cert.subject),
        BindingField::Ski => format!(
            "X509:<SKI>{}",
            super::hex(cert.subject_key_identifier.as_deref()?).to_uppercase()
        ),
        BindingField::Sha1PublicKey => format!("X509:<SHA1-PUKEY>{}", cert.sha1.to_uppercase()),
        BindingField::IssuerAndSerialNumber => {
            let serial = match order {
                SerialOrder::LittleEndian => cert.serial.iter().rev().copied().collect(),
                SerialOrder::BigEndian => cert.serial.clone(),
            };
            format!("X509:<I>{}<SR>{}", cert.issuer, super::hex(&serial))
        }
    })
}
