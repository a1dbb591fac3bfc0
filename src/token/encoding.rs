//! Host-side encodings around a token's raw signing operations: digests and PKCS#1 DigestInfo,
//! EMSA-PSS for tokens that only do raw RSA, and ECDSA's raw `r||s` to DER.

use ring::digest::{self, Algorithm};
use ring::rand::{SecureRandom, SystemRandom};

/// The hash a TLS signature scheme uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn algorithm(self) -> &'static Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    pub fn output_len(self) -> usize {
        self.algorithm().output_len()
    }

    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), message).as_ref().to_vec()
    }

    /// The DER DigestInfo prefix that PKCS#1 v1.5 signs in front of the hash.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// `DigestInfo || H(message)`, what CKM_RSA_PKCS signs for PKCS#1 v1.5.
    pub fn digest_info(self, message: &[u8]) -> Vec<u8> {
        let mut out = self.digest_info_prefix().to_vec();
        out.extend(self.digest(message));
        out
    }
}

/// Why an encoding could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("the RSA modulus ({0} bits) is too small for this PSS hash")]
    ModulusTooSmall(usize),
    #[error("the system random number generator failed")]
    Random,
    #[error("the token returned a malformed ECDSA signature ({0} bytes)")]
    BadEcdsaSignature(usize),
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with MGF1 over the same hash and a salt as long as the hash,
/// as TLS requires. The result, left-padded to the modulus length, is what CKM_RSA_X_509 signs.
pub fn emsa_pss_encode(
    hash: Hash,
    message: &[u8],
    modulus_bits: usize,
) -> Result<Vec<u8>, EncodingError> {
    let em_bits = modulus_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let h_len = hash.output_len();
    let s_len = h_len;
    if em_len < h_len + s_len + 2 {
        return Err(EncodingError::ModulusTooSmall(modulus_bits));
    }
    let m_hash = hash.digest(message);
    let mut salt = vec![0u8; s_len];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| EncodingError::Random)?;
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(&m_hash);
    m_prime.extend_from_slice(&salt);
    let h = hash.digest(&m_prime);

    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - s_len - 1];
    db.push(0x01);
    db.extend_from_slice(&salt);
    let mask = mgf1(hash, &h, db_len);
    for (byte, m) in db.iter_mut().zip(mask) {
        *byte ^= m;
    }
    // Clear the leftmost 8*emLen - emBits bits.
    let unused = 8 * em_len - em_bits;
    db[0] &= 0xff >> unused;

    let mut em = Vec::with_capacity(modulus_bits.div_ceil(8));
    // The modulus may be a byte longer than EM when emBits is a multiple of 8.
    em.resize(modulus_bits.div_ceil(8) - em_len, 0);
    em.extend_from_slice(&db);
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}

fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend(hash.digest(&input));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// CKM_ECDSA's raw `r||s` as the DER Ecdsa-Sig-Value TLS carries.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, EncodingError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(EncodingError::BadEcdsaSignature(raw.len()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(r, true);
            w.next().write_bigint_bytes(s, true);
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_strips_and_pads_like_der_integers_must() {
        // r with its top bit set needs a 0x00; s with leading zeros loses them.
        let mut raw = vec![0x80; 32];
        raw.extend(std::iter::repeat_n(0, 31));
        raw.push(0x05);
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x05]);
        assert_eq!(
            ecdsa_raw_to_der(&[1, 2, 3]),
            Err(EncodingError::BadEcdsaSignature(3))
        );
    }

    #[test]
    fn digest_info_is_prefix_and_hash() {
        let info = Hash::Sha256.digest_info(b"abc");
        assert_eq!(info.len(), 19 + 32);
        assert_eq!(&info[19..], Hash::Sha256.digest(b"abc").as_slice());
    }

    #[test]
    fn pss_encoding_has_the_right_shape() {
        let em = emsa_pss_encode(Hash::Sha256, b"message", 2048).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(em[255], 0xbc);
        assert_eq!(em[0] & 0x80, 0, "top bit cleared");
        assert_eq!(
            emsa_pss_encode(Hash::Sha512, b"m", 512),
            Err(EncodingError::ModulusTooSmall(512))
        );
    }
}
