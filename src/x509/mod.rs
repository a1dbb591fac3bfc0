//! Certificate facts shared by the agent and the verifier: thumbprints, key identifiers, the
//! distinguished-name strings Entra CBA compares (`reference/entra-cba-spec.md` §1.3), and
//! whether a certificate on a token is eligible to sign in.

pub mod cert_info;
pub mod chain;
pub mod dn;
pub mod eligibility;
pub mod user_ids;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

/// The bytes of hex text (either case, no separators); `None` unless it is all pairs of hex
/// digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// SHA-256 over the whole DER certificate, lowercase hex.
pub fn sha256_thumbprint(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// SHA-1 over the whole DER certificate, lowercase hex (Entra's `SHA1PublicKey`).
pub fn sha1_thumbprint(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

/// The subjectKeyIdentifier extension's value, if present.
pub fn subject_key_identifier<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0),
            _ => None,
        })
}

/// The keyIdentifier of the authorityKeyIdentifier extension, if present.
pub fn authority_key_identifier<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_reads_what_hex_writes_and_nothing_else() {
        assert_eq!(unhex(&hex(&[0, 0x3b, 0xff])), Some(vec![0, 0x3b, 0xff]));
        assert_eq!(unhex("3B8F"), Some(vec![0x3b, 0x8f]));
        assert_eq!(unhex("3b8"), None);
        assert_eq!(unhex("+1"), None);
        assert_eq!(unhex("éé"), None);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0a, 0xff]), "000aff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn thumbprints_of_known_input() {
        assert_eq!(
            sha256_thumbprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha1_thumbprint(b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
