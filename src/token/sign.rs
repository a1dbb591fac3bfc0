//! Signing with a private key that never leaves its token (C_Sign, C_SignInit, C_SignUpdate,
//! C_SignFinal): the mechanisms, what a token can do with a key, and the [`KeySigner`] trait the
//! TLS layer signs through.
//!
//! The host hashes; the token signs the digest (CKM_RSA_PKCS over DigestInfo, CKM_RSA_PKCS_PSS, or
//! CKM_RSA_X_509 over a host-side EMSA-PSS encoding, and CKM_ECDSA whose raw `r||s` becomes DER).
//! A CKA_ALWAYS_AUTHENTICATE key gets a context-specific login before every signature, which with
//! cryptoki means a multi-part hash-and-sign mechanism.

use std::fmt;
use std::sync::Mutex;

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;

use super::encoding::{ecdsa_raw_to_der, emsa_pss_encode, EncodingError, Hash};
use super::error::TokenError;

/// A signature as TLS asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
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
    #[error(transparent)]
    Token(#[from] TokenError),
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
        match self {
            Self::Token(error) if error.token_removed() => Some(&error.token),
            _ => None,
        }
    }
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
    /// The module's path, when known: a hosted module's signatures are watched.
    module: Option<std::path::PathBuf>,
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
            module: None,
            token,
            session: Mutex::new(session),
            key,
            algorithm,
            capabilities,
            context_login,
        }
    }

    /// The same key, known to be on the module at `module`.
    pub fn from_module(self, module: std::path::PathBuf) -> Self {
        Self {
            module: Some(module),
            ..self
        }
    }

    fn token_error(
        &self,
        function: &'static str,
    ) -> impl FnOnce(cryptoki::error::Error) -> SignError + '_ {
        move |source| SignError::Token(TokenError::on(&self.token, function)(source))
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
        let _call = self.module.as_deref().map(super::watched_call);
        match &self.context_login {
            Some(login) => self.sign_with_context_login(&session, login, scheme, message),
            None => self.sign_digest(&session, scheme, message),
        }
    }
}
