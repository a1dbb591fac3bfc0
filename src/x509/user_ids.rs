//! The Entra certificateUserIds strings a certificate would match, one per binding form
//! (`reference/entra-cba-spec.md` §1.1–1.3).
//!
//! Choices where the sources disagree: `<SR>` is the serial's DER content octets byte-reversed
//! (little-endian, as `certutil -dump` shows and Entra's how-to says) unless big-endian is asked for;
//! SKI and SHA1-PUKEY are uppercase hex, as Microsoft's own script writes them.

use serde::{Deserialize, Serialize};

use super::cert_info::CertInfo;

/// The seven username-binding fields of Entra CBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
        OtherNameValue, SanType, SerialNumber,
    };

    use super::*;

    // Fixed Ed25519 keys: Ed25519 signatures are deterministic, so the certificate's DER (and its
    // SHA-1 thumbprint) is the same on every run.
    const CA_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPaEtSyPNBwICK2vTBkkRS30t/hpFzRPbkX5hwpwIABc\n-----END PRIVATE KEY-----\n";
    const USER_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIG2urgucyADruoHpGJ4vOZsplkVAUp196Z+Qw8VElmGU\n-----END PRIVATE KEY-----\n";

    fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        for (ty, value) in parts {
            dn.push(ty.clone(), *value);
        }
        dn
    }

    /// Bob's certificate: the serial is the worked example in Entra's how-to.
    fn bobs_certificate() -> CertInfo {
        let mut ca = CertificateParams::default();
        ca.distinguished_name = dn(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Woodgrove Bank"),
            (DnType::CommonName, "Woodgrove Issuing CA"),
        ]);
        let issuer = Issuer::new(ca, KeyPair::from_pem(CA_KEY).unwrap());

        let mut user = CertificateParams::default();
        user.distinguished_name = dn(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "Woodgrove Bank"),
            (DnType::OrganizationalUnitName, "Users"),
            (DnType::CommonName, "Bob Kelly"),
        ]);
        user.serial_number = Some(SerialNumber::from_slice(&[
            0x48, 0xef, 0xa0, 0x6b, 0xa8, 0x12, 0x72, 0x99, 0x49, 0x9b, 0x06, 0x9f, 0x13, 0x34,
            0x41, 0xb2,
        ]));
        user.not_before = rcgen::date_time_ymd(2026, 1, 1);
        user.not_after = rcgen::date_time_ymd(2027, 1, 1);
        user.is_ca = IsCa::ExplicitNoCa;
        user.key_identifier_method = KeyIdMethod::PreSpecified(vec![
            0xc6, 0xf4, 0xe9, 0x6c, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
            0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
        ]);
        user.subject_alt_names = vec![
            SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String("bob@woodgrove.com".into()),
            )),
            SanType::Rfc822Name("bob.kelly@woodgrove.com".try_into().unwrap()),
        ];
        let cert = user
            .signed_by(&KeyPair::from_pem(USER_KEY).unwrap(), &issuer)
            .unwrap();
        CertInfo::from_der(cert.der()).unwrap()
    }

    #[test]
    fn all_seven_binding_forms_match_hand_worked_values() {
        let cert = bobs_certificate();
        let issuer = "C=US,O=Woodgrove Bank,CN=Woodgrove Issuing CA";
        let subject = "C=US,O=Woodgrove Bank,OU=Users,CN=Bob Kelly";
        let ids = certificate_user_ids(&cert, SerialOrder::LittleEndian);
        let expected = [
            (
                BindingField::PrincipalName,
                "X509:<PN>bob@woodgrove.com".to_owned(),
            ),
            (
                BindingField::Rfc822Name,
                "X509:<RFC822>bob.kelly@woodgrove.com".to_owned(),
            ),
            (
                BindingField::IssuerAndSubject,
                format!("X509:<I>{issuer}<S>{subject}"),
            ),
            (BindingField::Subject, format!("X509:<S>{subject}")),
            (
                BindingField::Ski,
                "X509:<SKI>C6F4E96C0102030405060708090A0B0C0D0E0F10".to_owned(),
            ),
            // `openssl x509 -inform DER -noout -fingerprint -sha1` of the same DER.
            (
                BindingField::Sha1PublicKey,
                "X509:<SHA1-PUKEY>896B25EF61678B6FDBA8AAA1C32BC56AAC8BDD5C".to_owned(),
            ),
            // The how-to's example: serial 48efa06b...3441b2 is stored byte-reversed.
            (
                BindingField::IssuerAndSerialNumber,
                format!("X509:<I>{issuer}<SR>b24134139f069b49997212a86ba0ef48"),
            ),
        ];
        let found: Vec<(BindingField, String)> =
            ids.into_iter().map(|id| (id.field, id.value)).collect();
        assert_eq!(found, expected);
        assert_eq!(
            BindingField::ALL
                .iter()
                .filter(|f| f.is_high_affinity())
                .count(),
            3
        );
    }

    #[test]
    fn serial_can_be_big_endian() {
        let cert = bobs_certificate();
        assert_eq!(
            certificate_user_id(&cert, BindingField::IssuerAndSerialNumber, SerialOrder::BigEndian),
            Some(
                "X509:<I>C=US,O=Woodgrove Bank,CN=Woodgrove Issuing CA<SR>48efa06ba8127299499b069f133441b2"
                    .to_owned()
            )
        );
    }

    #[test]
    fn absent_fields_yield_nothing() {
        let mut cert = bobs_certificate();
        cert.upns.clear();
        cert.subject_key_identifier = None;
        let fields: Vec<BindingField> = certificate_user_ids(&cert, SerialOrder::default())
            .into_iter()
            .map(|id| id.field)
            .collect();
        assert!(!fields.contains(&BindingField::PrincipalName));
        assert!(!fields.contains(&BindingField::Ski));
        assert_eq!(fields.len(), 5);
    }
}
