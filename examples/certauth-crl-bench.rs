//! `certauth-crl-bench`: the workload for `benches/crl_index.sh`.
//!
//! - `generate DIR COUNT`: a CA (ca.pem) and a CRL of COUNT revoked serials signed by it (big.crl).
//! - `ingest DIR`: parse, verify and index big.crl once, as the verifier does; prints the time.
//! - `lookups DIR`: lookup cost per serial in certauth's index, and in rustls-webpki's owned and
//!   borrowed CRLs, on the same CRL; prints nanoseconds per lookup.
//! - `issue-crl CA_PEM CA_KEY NUMBER COUNT OUT`: a CRL of COUNT serials for an existing CA.
//! - `issue-client CA_PEM CA_KEY UPN OUT_DIR`: a software client certificate (client.pem,
//!   client.key) for UPN from an existing CA, for load generators.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use certauth::fixtures::crl::{sign_crl, CrlContents, RevokedEntry};
use certauth::fixtures::spec::{KeyAlgorithm, RevocationReason};
use certauth::pki::crl::RevocationList;
use certauth::verifier::trust::TrustStore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

fn serial(i: u64) -> Vec<u8> {
    // Spread like real random serials; the top bit clear keeps the INTEGER positive.
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1;
    mixed.to_be_bytes().to_vec()
}

fn generate(dir: &Path, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Benchmark CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key)?;
    std::fs::write(dir.join("ca.pem"), cert.pem())?;
    let info = certauth::x509::cert_info::CertInfo::from_der(cert.der())?;
    let now = OffsetDateTime::now_utc();
    let entries: Vec<RevokedEntry> = (0..count)
        .map(|i| RevokedEntry {
            serial: serial(i),
            revoked_at: now - time::Duration::days(1),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    let ski = info.subject_key_identifier.clone().ok_or("no SKI")?;
    let der = sign_crl(
        &CrlContents {
            issuer_name: &info.subject_der,
            authority_key_id: &ski,
            number: 1,
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            entries: &entries,
            delta_of: None,
            freshest_url: None,
        },
        &key,
        KeyAlgorithm::P256,
    )?;
    std::fs::write(dir.join("big.crl"), &der)?;
    println!("{} entries, {} bytes", count, der.len());
    Ok(())
}

fn load(
    dir: &Path,
) -> Result<(Vec<u8>, certauth::verifier::trust::TrustedCa), Box<dyn std::error::Error>> {
    let der = std::fs::read(dir.join("big.crl"))?;
    let store = TrustStore::load(&dir.join("ca.pem"))?;
    Ok((der, store.cas()[0].clone()))
}

fn ingest(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (der, ca) = load(dir)?;
    let started = Instant::now();
    let list = RevocationList::verify_and_index(&der, &ca.info)?;
    let elapsed = started.elapsed();
    println!(
        "{} entries indexed in {:.1} ms",
        list.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn lookups(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (der, ca) = load(dir)?;
    let list = RevocationList::verify_and_index(&der, &ca.info)?;
    let count = list.len() as u64;
    // Half present, half absent, spread over the whole CRL.
    let probes: Vec<Vec<u8>> = (0..10_000u64)
        .map(|i| {
            if i % 2 == 0 {
                serial((i * 7919) % count)
            } else {
                serial(count + i)
            }
        })
        .collect();
    let ours = time_lookups("certauth index:", &probes, 100, |probe| {
        Ok(list.lookup(std::hint::black_box(probe)).is_some())
    })?;

    let owned = webpki::OwnedCertRevocationList::from_der(&der)?;
    let owned = webpki::CertRevocationList::from(owned);
    let webpki_owned = time_lookups("webpki owned CRL:", &probes[..1000], 1, |probe| {
        Ok(owned.find_serial(probe)?.is_some())
    })?;

    let borrowed =
        webpki::CertRevocationList::Borrowed(webpki::BorrowedCertRevocationList::from_der(&der)?);
    let webpki_borrowed = time_lookups("webpki borrowed CRL:", &probes[..20], 1, |probe| {
        Ok(borrowed.find_serial(probe)?.is_some())
    })?;
    println!("ratio webpki owned / certauth: {:.1}x", webpki_owned / ours);
    println!(
        "ratio webpki borrowed / certauth: {:.0}x",
        webpki_borrowed / ours
    );
    Ok(())
}

/// Looks up each of `probes` `rounds` times with `found`; prints and returns the time per lookup
/// in nanoseconds.
fn time_lookups(
    label: &str,
    probes: &[Vec<u8>],
    rounds: usize,
    mut found: impl FnMut(&[u8]) -> Result<bool, Box<dyn std::error::Error>>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for probe in probes {
            hits += usize::from(found(probe)?);
        }
    }
    let lookups = rounds * probes.len();
    let per_lookup = started.elapsed().as_nanos() as f64 / lookups as f64;
    println!("{label:<24} {per_lookup:.0} ns per lookup ({lookups} lookups, {hits} hits)");
    Ok(per_lookup)
}

fn existing_ca(
    ca_pem: &str,
    ca_key: &str,
) -> Result<(certauth::x509::cert_info::CertInfo, KeyPair, KeyAlgorithm), Box<dyn std::error::Error>>
{
    let pem = std::fs::read(ca_pem)?;
    let der = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| e.to_string())?
        .1
        .contents;
    let info = certauth::x509::cert_info::CertInfo::from_der(&der)?;
    let key = KeyPair::from_pem(&std::fs::read_to_string(ca_key)?)?;
    let algorithm = if info.key.bits == Some(384) {
        KeyAlgorithm::P384
    } else {
        KeyAlgorithm::P256
    };
    Ok((info, key, algorithm))
}

fn issue_crl(
    ca_pem: &str,
    ca_key: &str,
    number: u64,
    count: u64,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let (info, key, algorithm) = existing_ca(ca_pem, ca_key)?;
    let now = OffsetDateTime::now_utc();
    let entries: Vec<RevokedEntry> = (0..count)
        .map(|i| RevokedEntry {
            serial: serial(i + 1_000_000),
            revoked_at: now - time::Duration::days(1),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    let ski = info.subject_key_identifier.clone().ok_or("no SKI")?;
    let der = sign_crl(
        &CrlContents {
            issuer_name: &info.subject_der,
            authority_key_id: &ski,
            number,
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            entries: &entries,
            delta_of: None,
            freshest_url: None,
        },
        &key,
        algorithm,
    )?;
    std::fs::write(out, &der)?;
    println!("{count} entries, {} bytes", der.len());
    Ok(())
}

fn issue_client(
    ca_pem: &str,
    ca_key: &str,
    upn: &str,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let pem = std::fs::read(ca_pem)?;
    let der = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| e.to_string())?
        .1
        .contents;
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(ca_key)?)?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&der.into(), ca_key)?;
    let key = KeyPair::generate()?;
    let params = support::client_params(upn, "load test");
    let cert = params.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("client.pem"), cert.pem())?;
    std::fs::write(out.join("client.key"), key.serialize_pem())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..).unwrap_or_default() {
        [cmd, ca, key, number, count, out] if cmd == "issue-crl" => {
            issue_crl(ca, key, number.parse()?, count.parse()?, Path::new(out))
        }
        [cmd, ca, key, upn, out] if cmd == "issue-client" => issue_client(ca, key, upn, Path::new(out)),
        [cmd, dir, count] if cmd == "generate" => generate(Path::new(dir), count.parse()?),
        [cmd, dir] if cmd == "ingest" => ingest(Path::new(dir)),
        [cmd, dir] if cmd == "lookups" => lookups(Path::new(dir)),
        _ => Err("usage: certauth-crl-bench generate DIR COUNT | ingest DIR | lookups DIR | issue-crl CA_PEM CA_KEY NUMBER COUNT OUT | issue-client CA_PEM CA_KEY UPN OUT_DIR".into()),
    }
}
