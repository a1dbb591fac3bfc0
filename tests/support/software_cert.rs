//! Software keys and certificates from the fixture's CA keys, for clients that present a PEM key
//! (openssl, curl) and for certificates no honest CA would issue.

use std::path::{Path, PathBuf};

use super::woodgrove::Woodgrove;

/// The certificateUserIds value that pins Alice to the forged certificate: the root CA's name and
/// the serial 4242 (a palindrome, the same in either byte order).
pub const FORGED_PIN: &str = "X509:<I>C=US,O=Woodgrove Bank,CN=Woodgrove Root CA<SR>4242";

/// A software certificate for `alice@woodgrove.com` from the Woodgrove issuing CA, honestly
/// issued: (certificate file, key file) in `dir`.
pub fn issued_alice(w: &Woodgrove, dir: &Path) -> (PathBuf, PathBuf) {
    let (ca_key, ca_der) = ca_key_and_der(w, "woodgrove-issuing");
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca_der.into(), ca_key).unwrap();
    alice(dir, &issuer, &[0x55, 0x01], Some("alice@woodgrove.com"))
}

/// A certificate signed with the issuing CA's key and carrying its AKI, but naming the *root* CA
/// as its issuer, serial 4242, no UPN: (certificate file, key file) in `dir`.
pub fn forged_issuer_alice(w: &Woodgrove, dir: &Path) -> (PathBuf, PathBuf) {
    let (ca_key, issuing_der) = ca_key_and_der(w, "woodgrove-issuing");
    let issuing = certauth::x509::cert_info::CertInfo::from_der(&issuing_der).unwrap();
    let mut forged = rcgen::CertificateParams::default();
    let mut root_name = rcgen::DistinguishedName::new();
    root_name.push(rcgen::DnType::CountryName, "US");
    root_name.push(rcgen::DnType::OrganizationName, "Woodgrove Bank");
    root_name.push(rcgen::DnType::CommonName, "Woodgrove Root CA");
    forged.distinguished_name = root_name;
    forged.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(issuing.subject_key_identifier.clone().unwrap());
    alice(
        dir,
        &rcgen::Issuer::new(forged, ca_key),
        &[0x42, 0x42],
        None,
    )
}

/// The fixture CA `id`'s private key (as `pki/ca/{id}.key` holds it) and its certificate's DER.
fn ca_key_and_der(w: &Woodgrove, id: &str) -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(w.fixture.path(&format!("pki/ca/{id}.key"))).unwrap(),
    )
    .unwrap();
    let der = std::fs::read(w.fixture.path(&format!("pki/ca/{id}.der"))).unwrap();
    (key, der)
}

fn alice(
    dir: &Path,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    serial: &[u8],
    upn: Option<&str>,
) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "Alice Wilber (software)");
    params.distinguished_name = name;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    if let Some(upn) = upn {
        params.subject_alt_names = vec![rcgen::SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            rcgen::OtherNameValue::Utf8String(upn.into()),
        ))];
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    let cert_file = dir.join("alice.pem");
    let key_file = dir.join("alice.key");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert_file, key_file)
}
