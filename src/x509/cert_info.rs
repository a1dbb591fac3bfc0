//! [`CertInfo`]: everything either half needs to know about one certificate, read once from its DER.

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::dn::entra_dn;
use super::{
    authority_key_identifier, hex, sha1_thumbprint, sha256_thumbprint, subject_key_identifier,
};

/// `t` as RFC 3339 (`2026-10-31T00:00:00Z`): how every output names a certificate's dates.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The Microsoft UPN otherName (SAN) OID.
pub const OID_UPN: &str = "1.3.6.1.4.1.311.20.2.3";
/// Extended key usages by OID.
pub const OID_EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
pub const OID_EKU_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
pub const OID_EKU_EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
pub const OID_EKU_SMARTCARD_LOGON: &str = "1.3.6.1.4.1.311.20.2.2";
pub const OID_EKU_ANY: &str = "2.5.29.37.0";

/// Why DER could not be read as a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid X.509 certificate: {0}")]
pub struct CertParseError(pub String);

/// The public key's algorithm and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// `RSA`, `EC` or `other`.
    pub kind: KeyKind,
    /// Modulus bits for RSA, field bits for EC.
    pub bits: Option<usize>,
    /// The named curve's OID for EC.
    pub curve: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyKind {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "EC")]
    Ec,
    #[serde(rename = "other")]
    Other,
}

/// Key usage bits that matter for sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyUsageBits {
    pub digital_signature: bool,
    pub non_repudiation: bool,
    pub key_encipherment: bool,
    pub key_agreement: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

impl KeyUsageBits {
    /// The names of the bits that are set, as RFC 5280 spells them.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.digital_signature, "digitalSignature"),
            (self.non_repudiation, "nonRepudiation"),
            (self.key_encipherment, "keyEncipherment"),
            (self.key_agreement, "keyAgreement"),
            (self.key_cert_sign, "keyCertSign"),
            (self.crl_sign, "cRLSign"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub der: Vec<u8>,
    /// Entra DN format (encoding order, `,`, no spaces).
    pub subject: String,
    pub issuer: String,
    /// DER of the subject and issuer Names, for matching TLS hints and chains.
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    /// The serial's DER content octets, big-endian, leading 0x00 kept.
    pub serial: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// SAN otherName UPNs, in certificate order.
    pub upns: Vec<String>,
    /// SAN rfc822Name values, in certificate order.
    pub rfc822_names: Vec<String>,
    /// Extended key usage OIDs; `None` when the extension is absent.
    pub extended_key_usage: Option<Vec<String>>,
    /// Key usage; `None` when the extension is absent.
    pub key_usage: Option<KeyUsageBits>,
    /// certificatePolicies OIDs.
    pub policies: Vec<String>,
    pub subject_key_identifier: Option<Vec<u8>>,
    pub authority_key_identifier: Option<Vec<u8>>,
    pub sha1: String,
    pub sha256: String,
    pub key: KeyInfo,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
}

impl CertInfo {
    /// Reads a DER certificate. Trailing bytes after the certificate are an error.
    pub fn from_der(der: &[u8]) -> Result<Self, CertParseError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertParseError(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertParseError(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        let mut info = Self {
            der: der.to_vec(),
            subject: entra_dn(cert.subject()),
            issuer: entra_dn(cert.issuer()),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_der: cert.issuer().as_raw().to_vec(),
            serial: cert.raw_serial().to_vec(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            upns: Vec::new(),
            rfc822_names: Vec::new(),
            extended_key_usage: None,
            key_usage: None,
            policies: Vec::new(),
            subject_key_identifier: subject_key_identifier(&cert).map(<[u8]>::to_vec),
            authority_key_identifier: authority_key_identifier(&cert).map(<[u8]>::to_vec),
            sha1: sha1_thumbprint(der),
            sha256: sha256_thumbprint(der),
            key: key_info(&cert),
            spki: cert.tbs_certificate.subject_pki.raw.to_vec(),
        };
        info.read_extensions(&cert);
        Ok(info)
    }

    /// The facts read from extensions: SAN names, key usages and policies.
    fn read_extensions(&mut self, cert: &X509Certificate<'_>) {
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::OtherName(oid, value) if oid.to_id_string() == OID_UPN => {
                                if let Some(upn) = decode_upn(value) {
                                    self.upns.push(upn);
                                }
                            }
                            GeneralName::RFC822Name(email) => {
                                self.rfc822_names.push((*email).to_owned())
                            }
                            _ => {}
                        }
                    }
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    self.extended_key_usage = Some(extended_key_usage_oids(eku));
                }
                ParsedExtension::KeyUsage(ku) => {
                    self.key_usage = Some(KeyUsageBits {
                        digital_signature: ku.digital_signature(),
                        non_repudiation: ku.non_repudiation(),
                        key_encipherment: ku.key_encipherment(),
                        key_agreement: ku.key_agreement(),
                        key_cert_sign: ku.key_cert_sign(),
                        crl_sign: ku.crl_sign(),
                    })
                }
                ParsedExtension::CertificatePolicies(policies) => self
                    .policies
                    .extend(policies.iter().map(|p| p.policy_id.to_id_string())),
                _ => {}
            }
        }
    }

    /// Lowercase big-endian hex of the serial.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// Whether `at` lies within notBefore..=notAfter.
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// The extended key usages, with well-known ones named.
    pub fn extended_key_usage_names(&self) -> Vec<String> {
        self.extended_key_usage
            .iter()
            .flatten()
            .map(|oid| eku_name(oid).map_or_else(|| oid.clone(), str::to_owned))
            .collect()
    }

    /// A short human name: the subject CN, else the whole subject.
    pub fn display_name(&self) -> String {
        common_name(&self.subject)
    }

    /// The issuer's short name: its CN, else the whole issuer name.
    pub fn issuer_display_name(&self) -> String {
        common_name(&self.issuer)
    }

    /// The key as people name it: `RSA-2048`, `EC P-256`.
    pub fn key_description(&self) -> String {
        match (self.key.kind, self.key.bits) {
            (KeyKind::Rsa, Some(bits)) => format!("RSA-{bits}"),
            (KeyKind::Ec, Some(bits)) => format!("EC P-{bits}"),
            _ => "other".to_owned(),
        }
    }
}

/// The last CN of a distinguished name as [`CertInfo`] holds it, else the whole name.
fn common_name(name: &str) -> String {
    name.split(',')
        .rev()
        .find_map(|rdn| rdn.strip_prefix("CN="))
        .map_or_else(|| name.to_owned(), |cn| cn.trim_matches('"').to_owned())
}

/// The common name of a well-known EKU OID.
pub fn eku_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        OID_EKU_CLIENT_AUTH => "clientAuth",
        OID_EKU_SERVER_AUTH => "serverAuth",
        OID_EKU_EMAIL_PROTECTION => "emailProtection",
        OID_EKU_SMARTCARD_LOGON => "smartcardLogon",
        OID_EKU_ANY => "anyExtendedKeyUsage",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        _ => return None,
    })
}

/// The UPN otherName value is `[0] EXPLICIT UTF8String`.
fn decode_upn(value: &[u8]) -> Option<String> {
    yasna::parse_der(value, |r| {
        r.read_tagged(yasna::Tag::context(0), |r| r.read_utf8string())
    })
    .ok()
}

fn key_info(cert: &X509Certificate<'_>) -> KeyInfo {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyInfo {
            kind: KeyKind::Rsa,
            bits: Some(rsa.key_size()),
            curve: None,
        },
        Ok(PublicKey::EC(point)) => KeyInfo {
            kind: KeyKind::Ec,
            bits: Some(point.key_size()),
            curve: spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string()),
        },
        _ => KeyInfo {
            kind: KeyKind::Other,
            bits: None,
            curve: None,
        },
    }
}

/// The extended key usages as dotted OIDs: the ones x509-parser names, then the others.
fn extended_key_usage_oids(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let known = [
        (eku.any, OID_EKU_ANY),
        (eku.server_auth, OID_EKU_SERVER_AUTH),
        (eku.client_auth, OID_EKU_CLIENT_AUTH),
        (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
        (eku.email_protection, OID_EKU_EMAIL_PROTECTION),
        (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
        (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
    ];
    let mut oids: Vec<String> = known
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, oid)| (*oid).to_owned())
        .collect();
    oids.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    oids
}

#[cfg(test)]
mod rfc3339_tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        // 2026-10-31 00:00:00 UTC, which time's Display shows as `2026-10-31 0:00:00.0 +00:00:00`.
        let t = OffsetDateTime::from_unix_timestamp(1_793_404_800).unwrap();
        assert_eq!(rfc3339(t), "2026-10-31T00:00:00Z");
    }
}
