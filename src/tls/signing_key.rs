//! rustls' `SigningKey`/`Signer` over a [`KeySigner`], the token's signer: which TLS signature
//! schemes a token key can make, and signing inside the handshake. Signing runs inside the TLS
//! handshake, so on a multi-threaded tokio runtime it moves off the async worker while the token
//! works. The PKCS#11 side is `token::sign`.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::token::encoding::Hash;
use crate::token::sign::{KeyAlgorithm, KeySigner, Scheme};

/// The token signature a TLS signature scheme asks for.
fn scheme_for(scheme: SignatureScheme) -> Option<Scheme> {
    Some(match scheme {
        SignatureScheme::RSA_PKCS1_SHA256 => Scheme::RsaPkcs1(Hash::Sha256),
        SignatureScheme::RSA_PKCS1_SHA384 => Scheme::RsaPkcs1(Hash::Sha384),
        SignatureScheme::RSA_PKCS1_SHA512 => Scheme::RsaPkcs1(Hash::Sha512),
        SignatureScheme::RSA_PSS_SHA256 => Scheme::RsaPss(Hash::Sha256),
        SignatureScheme::RSA_PSS_SHA384 => Scheme::RsaPss(Hash::Sha384),
        SignatureScheme::RSA_PSS_SHA512 => Scheme::RsaPss(Hash::Sha512),
        SignatureScheme::ECDSA_NISTP256_SHA256 => Scheme::Ecdsa(Hash::Sha256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => Scheme::Ecdsa(Hash::Sha384),
        _ => return None,
    })
}

/// What went wrong the last time a token was asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignFailure {
    pub message: String,
    /// The token's label when it was removed before it could sign.
    pub removed_token: Option<String>,
}

/// The schemes a key can make, best first.
pub fn supported_schemes(signer: &dyn KeySigner) -> Vec<SignatureScheme> {
    let caps = signer.capabilities();
    match signer.algorithm() {
        KeyAlgorithm::Rsa { .. } if signer.always_authenticate() => {
            let mut schemes = Vec::new();
            if caps.sha256_rsa_pss {
                schemes.push(SignatureScheme::RSA_PSS_SHA256);
            }
            if caps.sha256_rsa_pkcs {
                schemes.push(SignatureScheme::RSA_PKCS1_SHA256);
            }
            schemes
        }
        KeyAlgorithm::Rsa { .. } => {
            let mut schemes = Vec::new();
            if caps.rsa_pss || caps.rsa_raw {
                schemes.extend([
                    SignatureScheme::RSA_PSS_SHA256,
                    SignatureScheme::RSA_PSS_SHA384,
                    SignatureScheme::RSA_PSS_SHA512,
                ]);
            }
            if caps.rsa_pkcs1 {
                schemes.extend([
                    SignatureScheme::RSA_PKCS1_SHA256,
                    SignatureScheme::RSA_PKCS1_SHA384,
                    SignatureScheme::RSA_PKCS1_SHA512,
                ]);
            }
            schemes
        }
        KeyAlgorithm::EcP256 if caps.ecdsa || caps.ecdsa_sha256 => {
            vec![SignatureScheme::ECDSA_NISTP256_SHA256]
        }
        KeyAlgorithm::EcP384 if caps.ecdsa || caps.ecdsa_sha384 => {
            vec![SignatureScheme::ECDSA_NISTP384_SHA384]
        }
        _ => Vec::new(),
    }
}

/// Whether TLS 1.3 is possible: an RSA key needs PSS there.
pub fn can_do_tls13(signer: &dyn KeySigner) -> bool {
    match signer.algorithm() {
        KeyAlgorithm::Rsa { .. } => supported_schemes(signer)
            .iter()
            .any(|s| matches!(scheme_for(*s), Some(Scheme::RsaPss(_)))),
        _ => !supported_schemes(signer).is_empty(),
    }
}

/// rustls' view of a token key.
#[derive(Clone)]
pub struct TokenSigningKey {
    signer: Arc<dyn KeySigner>,
    spki: Vec<u8>,
    schemes: Vec<SignatureScheme>,
    /// The last signing failure, so the sign-in can say what the token did.
    last_error: Arc<Mutex<Option<SignFailure>>>,
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigningKey")
            .field("signer", &self.signer)
            .field("schemes", &self.schemes)
            .finish_non_exhaustive()
    }
}

impl TokenSigningKey {
    /// `spki` is the certificate's SubjectPublicKeyInfo (rustls checks it matches the leaf).
    pub fn new(signer: Arc<dyn KeySigner>, spki: Vec<u8>) -> Self {
        let schemes = supported_schemes(signer.as_ref());
        Self {
            signer,
            spki,
            schemes,
            last_error: Arc::new(Mutex::new(None)),
        }
    }

    pub fn schemes(&self) -> &[SignatureScheme] {
        &self.schemes
    }

    pub fn can_do_tls13(&self) -> bool {
        can_do_tls13(self.signer.as_ref())
    }

    /// What went wrong the last time the token was asked to sign, if anything.
    pub fn last_error(&self) -> Option<SignFailure> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl SigningKey for TokenSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = *self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(TokenSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.signer.algorithm() {
            KeyAlgorithm::Rsa { .. } => SignatureAlgorithm::RSA,
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => SignatureAlgorithm::ECDSA,
        }
    }
}

#[derive(Debug)]
struct TokenSigner {
    key: TokenSigningKey,
    scheme: SignatureScheme,
}

impl TokenSigner {
    fn sign_now(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let scheme = scheme_for(self.scheme).ok_or_else(|| {
            rustls::Error::General(format!("unsupported scheme {:?}", self.scheme))
        })?;
        self.key.signer.sign(scheme, message).map_err(|e| {
            if let Ok(mut last) = self.key.last_error.lock() {
                *last = Some(SignFailure {
                    message: e.to_string(),
                    removed_token: e.removed_token().map(str::to_owned),
                });
            }
            rustls::Error::Other(rustls::OtherError(Arc::new(e)))
        })
    }
}

impl Signer for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // rustls signs synchronously inside the handshake. A token can take a second; on a
        // multi-threaded runtime, let the other tasks move to another worker meanwhile.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.sign_now(message))
            }
            _ => self.sign_now(message),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
