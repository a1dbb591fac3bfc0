//! CRLs made for a test, signed with a fixture CA's key (or another CA's, to forge one), for the
//! revocation tests that need numbers, deltas, entries or dates the fixture's own CRLs lack.

use certauth::fixtures::crl::{sign_crl, CrlContents, RevokedEntry};
use certauth::fixtures::spec::{KeyAlgorithm, RevocationReason};
use certauth::x509::cert_info::CertInfo;
use time::OffsetDateTime;

use super::woodgrove::Woodgrove;

/// What goes into a CRL: whose it is, who signs it, and what it says.
pub struct TestCrl<'a> {
    /// The fixture authority (by id) whose CRL it is.
    pub ca: &'a str,
    /// The fixture authority whose key signs it: `ca` itself, or another to forge one.
    pub signer: &'a str,
    pub number: u64,
    /// The base CRL's number, for a delta CRL.
    pub delta_of: Option<u64>,
    /// The fixture certificates it lists, with the reason given for each.
    pub entries: &'a [(&'a str, RevocationReason)],
    /// When its entries say they were revoked.
    pub revoked_at: OffsetDateTime,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

impl TestCrl<'_> {
    /// The CRL, DER-encoded and signed.
    pub fn sign(&self, w: &Woodgrove) -> Vec<u8> {
        let authority = w.fixture.manifest.authority(self.ca).unwrap();
        let ca_der = std::fs::read(w.fixture.path(&authority.certificate_der)).unwrap();
        let ca_info = CertInfo::from_der(&ca_der).unwrap();
        let signer = w.fixture.manifest.authority(self.signer).unwrap();
        let key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(w.fixture.path(&signer.private_key_pem)).unwrap(),
        )
        .unwrap();
        let algorithm = if signer.id == "woodgrove-root" {
            KeyAlgorithm::P384
        } else {
            KeyAlgorithm::P256
        };
        let entries: Vec<RevokedEntry> = self
            .entries
            .iter()
            .map(|(name, reason)| RevokedEntry {
                serial: CertInfo::from_der(&w.der(name)).unwrap().serial,
                revoked_at: self.revoked_at,
                reason: *reason,
            })
            .collect();
        sign_crl(
            &CrlContents {
                issuer_name: &ca_info.subject_der,
                authority_key_id: ca_info.subject_key_identifier.as_deref().unwrap(),
                number: self.number,
                this_update: self.this_update,
                next_update: self.next_update,
                entries: &entries,
                delta_of: self.delta_of,
                freshest_url: None,
            },
            &key,
            algorithm,
        )
        .unwrap()
    }
}
