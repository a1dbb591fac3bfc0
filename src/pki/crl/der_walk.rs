//! A lean DER reader for CRLs: splits a CertificateList into its parts and walks the revoked
//! entries in place, without building an object per entry. A 20 MB CRL holds half a million
//! entries; this is what lets one be ingested faster than OpenSSL does.
//!
//! It only slices; every slice it returns lies within the input, and malformed input is an error,
//! never a panic (fuzzed: `fuzz/fuzz_targets/crl.rs`).

/// Why the DER does not hold a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerError(pub &'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_OID: u8 = 0x06;
pub const TAG_ENUMERATED: u8 = 0x0a;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_UTC_TIME: u8 = 0x17;
pub const TAG_GENERALIZED_TIME: u8 = 0x18;
pub const TAG_BOOLEAN: u8 = 0x01;
const TAG_EXTENSIONS: u8 = 0xa0;

/// One TLV: its tag, its content, the whole encoding, and what follows it.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub whole: &'a [u8],
    pub rest: &'a [u8],
}

/// Reads one TLV (single-byte tags, definite lengths, as DER requires).
pub fn tlv(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError("truncated: no tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tags are not used in CRLs"));
    }
    let (&first, after_length) = after_tag
        .split_first()
        .ok_or(DerError("truncated: no length"))?;
    let (length, body) = if first < 0x80 {
        (usize::from(first), after_length)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(DerError("unsupported length encoding"));
        }
        if after_length.len() < count {
            return Err(DerError("truncated length"));
        }
        let length = after_length[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &after_length[count..])
    };
    if body.len() < length {
        return Err(DerError("truncated: content shorter than its length"));
    }
    let header = input.len() - body.len();
    Ok(Tlv {
        tag,
        content: &body[..length],
        whole: &input[..header + length],
        rest: &body[length..],
    })
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let item = tlv(input)?;
    if item.tag == tag {
        Ok(item)
    } else {
        Err(DerError(what))
    }
}

/// The parts of a CertificateList.
#[derive(Debug, Clone, Copy)]
pub struct RawCrl<'a> {
    /// The whole TBSCertList, as signed.
    pub tbs: &'a [u8],
    /// The outer signatureAlgorithm (AlgorithmIdentifier TLV).
    pub signature_algorithm: &'a [u8],
    /// The signature BIT STRING TLV.
    pub signature: &'a [u8],
    /// The inner signature AlgorithmIdentifier TLV, which must equal the outer one.
    pub tbs_signature_algorithm: &'a [u8],
    /// The issuer Name TLV.
    pub issuer: &'a [u8],
    pub this_update: &'a [u8],
    pub next_update: Option<&'a [u8]>,
    /// The content of revokedCertificates (empty when absent).
    pub revoked: &'a [u8],
    /// The content of the crlExtensions SEQUENCE (empty when absent).
    pub extensions: &'a [u8],
}

/// Splits a DER CertificateList into its parts.
pub fn split(der: &[u8]) -> Result<RawCrl<'_>, DerError> {
    let outer = expect(der, TAG_SEQUENCE, "not a CRL: no outer SEQUENCE")?;
    if !outer.rest.is_empty() {
        return Err(DerError("bytes after the CRL"));
    }
    let tbs = expect(outer.content, TAG_SEQUENCE, "no TBSCertList")?;
    let algorithm = expect(tbs.rest, TAG_SEQUENCE, "no signatureAlgorithm")?;
    let signature = expect(algorithm.rest, TAG_BIT_STRING, "no signature")?;
    if !signature.rest.is_empty() {
        return Err(DerError("bytes after the signature"));
    }

    let mut fields = tbs.content;
    let mut item = tlv(fields)?;
    if item.tag == TAG_INTEGER {
        if item.content != [1] {
            return Err(DerError("only v2 CRLs are supported"));
        }
        fields = item.rest;
        item = tlv(fields)?;
    }
    if item.tag != TAG_SEQUENCE {
        return Err(DerError(
            "no signature AlgorithmIdentifier in the TBSCertList",
        ));
    }
    let tbs_algorithm = item.whole;
    let issuer = expect(item.rest, TAG_SEQUENCE, "no issuer Name")?;
    let this_update = tlv(issuer.rest)?;
    if !matches!(this_update.tag, TAG_UTC_TIME | TAG_GENERALIZED_TIME) {
        return Err(DerError("no thisUpdate"));
    }
    let mut rest = this_update.rest;
    let mut next_update = None;
    let mut revoked: &[u8] = &[];
    let mut extensions: &[u8] = &[];
    while !rest.is_empty() {
        let item = tlv(rest)?;
        match item.tag {
            TAG_UTC_TIME | TAG_GENERALIZED_TIME if next_update.is_none() && revoked.is_empty() => {
                next_update = Some(item.whole)
            }
            TAG_SEQUENCE if revoked.is_empty() && extensions.is_empty() => revoked = item.content,
            TAG_EXTENSIONS if extensions.is_empty() => {
                extensions = expect(
                    item.content,
                    TAG_SEQUENCE,
                    "crlExtensions is not a SEQUENCE",
                )?
                .content
            }
            _ => return Err(DerError("unexpected field in the TBSCertList")),
        }
        rest = item.rest;
    }
    Ok(RawCrl {
        tbs: tbs.whole,
        signature_algorithm: algorithm.whole,
        signature: signature.whole,
        tbs_signature_algorithm: tbs_algorithm,
        issuer: issuer.whole,
        this_update: this_update.whole,
        next_update,
        revoked,
        extensions,
    })
}

/// One extension: OID content, criticality, and the content of extnValue.
#[derive(Debug, Clone, Copy)]
pub struct Extension<'a> {
    pub oid: &'a [u8],
    pub critical: bool,
    pub value: &'a [u8],
}

/// Walks a SEQUENCE OF Extension's content.
pub fn extensions(mut input: &[u8]) -> impl Iterator<Item = Result<Extension<'_>, DerError>> {
    std::iter::from_fn(move || {
        if input.is_empty() {
            return None;
        }
        let parsed = (|| {
            let ext = expect(input, TAG_SEQUENCE, "an extension is not a SEQUENCE")?;
            let oid = expect(ext.content, TAG_OID, "an extension has no OID")?;
            let mut after = oid.rest;
            let mut critical = false;
            if let Ok(flag) = expect(after, TAG_BOOLEAN, "") {
                critical = flag.content.first().is_some_and(|b| *b != 0);
                after = flag.rest;
            }
            let value = expect(after, TAG_OCTET_STRING, "an extension has no value")?;
            Ok((
                ext.rest,
                Extension {
                    oid: oid.content,
                    critical,
                    value: value.content,
                },
            ))
        })();
        match parsed {
            Ok((rest, ext)) => {
                input = rest;
                Some(Ok(ext))
            }
            Err(e) => {
                input = &[];
                Some(Err(e))
            }
        }
    })
}

/// One revoked entry: the serial's content octets, and the reasonCode if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry<'a> {
    pub serial: &'a [u8],
    pub reason: Option<u8>,
}

/// OID 2.5.29.21, CRLReason.
const OID_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];

/// Walks revokedCertificates' content.
pub fn revoked_entries(
    mut input: &[u8],
) -> impl Iterator<Item = Result<RevokedEntry<'_>, DerError>> {
    std::iter::from_fn(move || {
        if input.is_empty() {
            return None;
        }
        let parsed = (|| {
            let entry = expect(input, TAG_SEQUENCE, "a revoked entry is not a SEQUENCE")?;
            let serial = expect(entry.content, TAG_INTEGER, "a revoked entry has no serial")?;
            let date = tlv(serial.rest)?;
            if !matches!(date.tag, TAG_UTC_TIME | TAG_GENERALIZED_TIME) {
                return Err(DerError("a revoked entry has no revocation date"));
            }
            let mut reason = None;
            if !date.rest.is_empty() {
                let exts = expect(
                    date.rest,
                    TAG_SEQUENCE,
                    "entry extensions are not a SEQUENCE",
                )?;
                for ext in extensions(exts.content) {
                    let ext = ext?;
                    if ext.oid == OID_REASON_CODE {
                        let code =
                            expect(ext.value, TAG_ENUMERATED, "reasonCode is not ENUMERATED")?;
                        reason = code.content.last().copied();
                    } else if ext.critical {
                        return Err(DerError("an entry has an unknown critical extension"));
                    }
                }
            }
            Ok((
                entry.rest,
                RevokedEntry {
                    serial: serial.content,
                    reason,
                },
            ))
        })();
        match parsed {
            Ok((rest, entry)) => {
                input = rest;
                Some(Ok(entry))
            }
            Err(e) => {
                input = &[];
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_truncation() {
        assert_eq!(tlv(&[0x02, 0x01, 0x05]).unwrap().content, &[0x05]);
        let long = [&[0x04, 0x81, 0x80][..], &[0u8; 0x80]].concat();
        assert_eq!(tlv(&long).unwrap().content.len(), 0x80);
        assert!(tlv(&[0x04, 0x05, 0x00]).is_err());
        assert!(tlv(&[0x04, 0x85, 1, 2, 3, 4, 5]).is_err());
        assert!(tlv(&[]).is_err());
        assert!(split(&[0x30, 0x00]).is_err());
    }
}
