//! rustls' `SigningKey`/`Signer` over a private key that never leaves its token.
//!
//! The host hashes; the token signs the digest (CKM_RSA_PKCS over DigestInfo, CKM_RSA_PKCS_PSS, or
//! CKM_RSA_X_509 over a host-side EMSA-PSS encoding, and CKM_ECDSA whose raw `r||s` becomes DER).
//! A CKA_ALWAYS_AUTHENTICATE key gets a context-specific login before every signature, which with
//! cryptoki means a multi-part hash-and-sign mechanism. Signing runs inside the TLS handshake, so
//! on a multi-threaded tokio runtime it moves off the async worker while the token works.

use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use secrecy::SecretString;

use super::encoding::{ecdsa_raw_to_der, emsa_pss_encode, EncodingError, Hash};

/// A signature as TLS asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
}

impl Scheme {
    fn from_tls(scheme: SignatureScheme) -> Option<Self> {
        Some(match scheme {
            SignatureScheme::RSA_PKCS1_SHA256 => Self::RsaPkcs1(Hash::Sha256),
            SignatureScheme::RSA_PKCS1_SHA384 => Self::RsaPkcs1(Hash::Sha384),
            SignatureScheme::RSA_PKCS1_SHA512 => Self::RsaPkcs1(Hash::Sha512),
            SignatureScheme::RSA_PSS_SHA256 => Self::RsaPss(Hash::Sha256),
            SignatureScheme::RSA_PSS_SHA384 => Self::RsaPss(Hash::Sha384),
            SignatureScheme::RSA_PSS_SHA512 => Self::RsaPss(Hash::Sha512),
            SignatureScheme::ECDSA_NISTP256_SHA256 => Self::Ecdsa(Hash::Sha256),
            SignatureScheme::ECDSA_NISTP384_SHA384 => Self::Ecdsa(Hash::Sha384),
            _ => return None,
        })
    }
}

/// The kind of key on the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

/// What the token can do with this key, from its mechanism list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// CKM_RSA_PKCS
    pub rsa_pkcs1: bool,
    /// CKM_RSA_PKCS_PSS
    pub rsa_pss: bool,
    /// CKM_RSA_X_509 (raw RSA, so PSS can be encoded on the host)
    pub rsa_raw: bool,
    /// CKM_ECDSA
    pub ecdsa: bool,
    /// The hash-and-sign mechanisms an always-authenticate key needs.
    pub sha256_rsa_pkcs: bool,
    pub sha256_rsa_pss: bool,
    pub ecdsa_sha256: bool,
    pub ecdsa_sha384: bool,
}

impl Capabilities {
    pub fn from_mechanisms(mechanisms: &[MechanismType]) -> Self {
        let has = |m: MechanismType| mechanisms.contains(&m);
        Self {
            rsa_pkcs1: has(MechanismType::RSA_PKCS),
            rsa_pss: has(MechanismType::RSA_PKCS_PSS),
            rsa_raw: has(MechanismType::RSA_X_509),
            ecdsa: has(MechanismType::ECDSA),
            sha256_rsa_pkcs: has(MechanismType::SHA256_RSA_PKCS),
            sha256_rsa_pss: has(MechanismType::SHA256_RSA_PKCS_PSS),
            ecdsa_sha256: has(MechanismType::ECDSA_SHA256),
            ecdsa_sha384: has(MechanismType::ECDSA_SHA384),
        }
    }
}

/// Why a signature failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{operation} failed on token `{token}`: {source}")]
    Token {
        operation: &'static str,
        token: String,
        source: cryptoki::error::Error,
    },
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error("token `{token}` cannot make a {scheme:?} signature with this key")]
    Unsupported { token: String, scheme: Scheme },
    #[error("the token session is unusable after an earlier failure")]
    Poisoned,
}

impl SignError {
    /// The token's label, when the failure means it was pulled out (or its session went with
    /// it) rather than that it refused.
    pub fn removed_token(&self) -> Option<&str> {
        use cryptoki::error::{Error, RvError};
        match self {
            Self::Token {
                token,
                source:
                    Error::Pkcs11(
                        RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::SessionHandleInvalid
                        | RvError::SessionClosed,
                        _,
                    ),
                ..
            } => Some(token),
            _ => None,
        }
    }
}

/// What went wrong the last time a token was asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignFailure {
    pub message: String,
    /// The token's label when it was removed before it could sign.
    pub removed_token: Option<String>,
}

/// Something that makes raw signatures with one key: a token session, or in tests a wrapper.
pub trait KeySigner: Send + Sync + fmt::Debug {
    fn algorithm(&self) -> KeyAlgorithm;
    fn capabilities(&self) -> Capabilities;
    fn always_authenticate(&self) -> bool;
    /// Signs `message` (not yet hashed) as `scheme` asks; returns what goes on the wire.
    fn sign(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// How an always-authenticate key gets its context-specific login.
pub enum ContextLogin {
    /// The PIN the user gave for this sign-in, held only as long as the key.
    Pin(SecretString),
    /// The reader's PIN pad asks each time.
    PinPad,
}

/// A private key on a PKCS#11 token, used through one session.
pub struct Pkcs11Key {
    token: String,
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: KeyAlgorithm,
    capabilities: Capabilities,
    /// Only for a key that wants a login before each signature.
    context_login: Option<ContextLogin>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token)
            .field("algorithm", &self.algorithm)
            .field("capabilities", &self.capabilities)
            .field("always_authenticate", &self.context_login.is_some())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// `session` must be logged in. `context_login` is required for an always-authenticate key.
    pub fn new(
        token: String,
        session: Session,
        key: ObjectHandle,
        algorithm: KeyAlgorithm,
        capabilities: Capabilities,
        context_login: Option<ContextLogin>,
    ) -> Self {
        Self {
            token,
            session: Mutex::new(session),
            key,
            algorithm,
            capabilities,
            context_login,
        }
    }

    fn token_error(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(cryptoki::error::Error) -> SignError + '_ {
        move |source| SignError::Token {
            operation,
            token: self.token.clone(),
            source,
        }
    }

    fn sign_digest(
        &self,
        session: &Session,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let caps = self.capabilities;
        let unsupported = || SignError::Unsupported {
            token: self.token.clone(),
            scheme,
        };
        match scheme {
            Scheme::RsaPkcs1(hash) if caps.rsa_pkcs1 => session
                .sign(&Mechanism::RsaPkcs, self.key, &hash.digest_info(message))
                .map_err(self.token_error("C_Sign(CKM_RSA_PKCS)")),
            Scheme::RsaPss(hash) if caps.rsa_pss => session
                .sign(
                    &Mechanism::RsaPkcsPss(pss_params(hash)),
                    self.key,
                    &hash.digest(message),
                )
                .map_err(self.token_error("C_Sign(CKM_RSA_PKCS_PSS)")),
            Scheme::RsaPss(hash) if caps.rsa_raw => {
                let KeyAlgorithm::Rsa { bits } = self.algorithm else {
                    return Err(unsupported());
                };
                let encoded = emsa_pss_encode(hash, message, bits)?;
                session
                    .sign(&Mechanism::RsaX509, self.key, &encoded)
                    .map_err(self.token_error("C_Sign(CKM_RSA_X_509)"))
            }
            Scheme::Ecdsa(hash) if caps.ecdsa => {
                // Exactly the digest: CKM_ECDSA silently truncates longer input.
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &hash.digest(message))
                    .map_err(self.token_error("C_Sign(CKM_ECDSA)"))?;
                Ok(ecdsa_raw_to_der(&raw)?)
            }
            _ => Err(unsupported()),
        }
    }

    /// C_SignInit, C_Login(CKU_CONTEXT_SPECIFIC), then a multi-part hash-and-sign.
    fn sign_with_context_login(
        &self,
        session: &Session,
        login: &ContextLogin,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let caps = self.capabilities;
        let mechanism = match scheme {
            Scheme::RsaPkcs1(Hash::Sha256) if caps.sha256_rsa_pkcs => Mechanism::Sha256RsaPkcs,
            Scheme::RsaPss(Hash::Sha256) if caps.sha256_rsa_pss => {
                Mechanism::Sha256RsaPkcsPss(pss_params(Hash::Sha256))
            }
            Scheme::Ecdsa(Hash::Sha256) if caps.ecdsa_sha256 => Mechanism::EcdsaSha256,
            Scheme::Ecdsa(Hash::Sha384) if caps.ecdsa_sha384 => Mechanism::EcdsaSha384,
            _ => {
                return Err(SignError::Unsupported {
                    token: self.token.clone(),
                    scheme,
                })
            }
        };
        session
            .sign_init(&mechanism, self.key)
            .map_err(self.token_error("C_SignInit"))?;
        let pin = match login {
            ContextLogin::Pin(pin) => Some(pin),
            ContextLogin::PinPad => None,
        };
        session
            .login(UserType::ContextSpecific, pin)
            .map_err(self.token_error("C_Login(CKU_CONTEXT_SPECIFIC)"))?;
        session
            .sign_update(message)
            .map_err(self.token_error("C_SignUpdate"))?;
        let signature = session
            .sign_final()
            .map_err(self.token_error("C_SignFinal"))?;
        match scheme {
            Scheme::Ecdsa(_) => Ok(ecdsa_raw_to_der(&signature)?),
            _ => Ok(signature),
        }
    }
}

fn pss_params(hash: Hash) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        // TLS 1.3 requires a salt as long as the hash.
        // (32, 48 or 64: fits a CK_ULONG of any width.)
        s_len: std::ffi::c_ulong::from(hash.output_len() as u32).into(),
    }
}

impl KeySigner for Pkcs11Key {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn always_authenticate(&self) -> bool {
        self.context_login.is_some()
    }

    fn sign(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        // One operation at a time per session, as PKCS#11 requires.
        let session = self.session.lock().map_err(|_| SignError::Poisoned)?;
        tracing::debug!(token = %self.token, ?scheme, "signing on the token");
        match &self.context_login {
            Some(login) => self.sign_with_context_login(&session, login, scheme, message),
            None => self.sign_digest(&session, scheme, message),
        }
    }
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
            .any(|s| matches!(Scheme::from_tls(*s), Some(Scheme::RsaPss(_)))),
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
        let scheme = Scheme::from_tls(self.scheme).ok_or_else(|| {
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
