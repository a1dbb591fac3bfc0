//! Putting tokens and objects on a module, for the demo and test fixtures (C_InitToken,
//! C_InitPIN, C_GenerateKeyPair, C_CreateObject, C_Finalize). Private keys are generated on the
//! token, sensitive and never extractable; PINs stay in `secrecy` types.

use std::path::Path;

use cryptoki::context::Pkcs11;
use cryptoki::error::Error as CkError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use secrecy::SecretString;

use super::error::TokenError;
use super::module::{self, ModuleError};

/// Why a token could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the module has no free slot for token `{token}`")]
    NoFreeSlot { token: String },
    /// The token was initialised, then no slot showed it.
    #[error("token `{token}` vanished after C_InitToken")]
    Vanished { token: String },
    #[error("token `{token}` returned no public key for `{key}`")]
    NoPublicKey { token: String, key: String },
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The key pair to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairSpec<'a> {
    /// RSA with public exponent 65537.
    Rsa { bits: u32 },
    /// EC on the curve named by the DER OID `params` (CKA_EC_PARAMS).
    Ec { params: &'a [u8] },
}

/// The public half of a generated key pair, as the token gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// CKA_EC_POINT: a DER OCTET STRING on SoftHSM, a bare point on some modules.
    Ec {
        point: Vec<u8>,
    },
}

/// A certificate object to write: its DER and the names PKCS#11 keeps beside it.
#[derive(Debug, Clone, Copy)]
pub struct CertificateObject<'a> {
    pub der: &'a [u8],
    pub id: &'a [u8],
    pub label: &'a str,
    /// DER Names and the DER INTEGER serial, as CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER.
    pub subject: &'a [u8],
    pub issuer: &'a [u8],
    pub serial: &'a [u8],
}

/// A loaded and initialised module that tokens are created on.
pub struct Provisioner {
    pkcs11: Pkcs11,
}

impl Provisioner {
    /// Loads and initialises the module at `path`.
    pub fn load(path: &Path) -> Result<Self, ModuleError> {
        Ok(Self {
            pkcs11: module::initialise(path)?,
        })
    }

    /// Initialises a fresh token on a free slot, sets its user PIN, and returns a read-write
    /// session on it with the user logged in.
    pub fn create_token(
        &self,
        label: &str,
        so_pin: &SecretString,
        pin: &SecretString,
    ) -> Result<NewToken, ProvisionError> {
        let p11 = |function| TokenError::on(label, function);
        let free_slot = self
            .find_slot(|info| !info.token_initialized())
            .map_err(p11("C_GetSlotList"))?
            .ok_or_else(|| ProvisionError::NoFreeSlot {
                token: label.to_owned(),
            })?;
        self.pkcs11
            .init_token(free_slot, so_pin, label)
            .map_err(p11("C_InitToken"))?;
        // SoftHSM may move a token to another slot id once initialised: find it again by label.
        let slot = self
            .find_slot(|info| info.token_initialized() && info.label() == label)
            .map_err(p11("C_GetSlotList"))?
            .ok_or_else(|| ProvisionError::Vanished {
                token: label.to_owned(),
            })?;
        let session = self
            .pkcs11
            .open_rw_session(slot)
            .map_err(p11("C_OpenSession"))?;
        session
            .login(UserType::So, Some(so_pin))
            .map_err(p11("C_Login(SO)"))?;
        session.init_pin(pin).map_err(p11("C_InitPIN"))?;
        session.logout().map_err(p11("C_Logout"))?;
        session
            .login(UserType::User, Some(pin))
            .map_err(p11("C_Login(User)"))?;
        let serial = self
            .pkcs11
            .get_token_info(slot)
            .map_err(p11("C_GetTokenInfo"))?
            .serial_number()
            .to_owned();
        Ok(NewToken {
            label: label.to_owned(),
            serial,
            session,
        })
    }

    fn find_slot(&self, wanted: impl Fn(&TokenInfo) -> bool) -> Result<Option<Slot>, CkError> {
        for slot in self.pkcs11.get_slots_with_token()? {
            if wanted(&self.pkcs11.get_token_info(slot)?) {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Finalises the module so every token file is flushed.
    pub fn finalize(self) -> Result<(), TokenError> {
        self.pkcs11
            .finalize()
            .map_err(TokenError::on("", "C_Finalize"))
    }
}

/// A token being filled, with its user logged in.
pub struct NewToken {
    pub label: String,
    pub serial: String,
    session: Session,
}

impl NewToken {
    /// Generates a key pair on the token: the private half sensitive, never extractable, for
    /// signing only.
    pub fn generate_key_pair(
        &self,
        spec: KeyPairSpec<'_>,
        id: &[u8],
        label: &str,
        always_authenticate: bool,
    ) -> Result<PublicKey, ProvisionError> {
        let common = [
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = [
            &common[..],
            &[
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                // A sign-in key signs and does nothing else.
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::AlwaysAuthenticate(always_authenticate),
            ],
        ]
        .concat();
        let mut public = [
            &common[..],
            &[
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
            ],
        ]
        .concat();
        let (mechanism, wanted) = match spec {
            KeyPairSpec::Ec { params } => {
                public.push(Attribute::EcParams(params.to_vec()));
                (Mechanism::EccKeyPairGen, vec![AttributeType::EcPoint])
            }
            KeyPairSpec::Rsa { bits } => {
                let bits = cryptoki::types::Ulong::from(std::ffi::c_ulong::from(bits));
                public.push(Attribute::ModulusBits(bits));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                let wanted = vec![AttributeType::Modulus, AttributeType::PublicExponent];
                (Mechanism::RsaPkcsKeyPairGen, wanted)
            }
        };
        let p11 = |function| TokenError::on(&self.label, function);
        let (public_handle, _) = self
            .session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(p11("C_GenerateKeyPair"))?;
        let attributes = self
            .session
            .get_attributes(public_handle, &wanted)
            .map_err(p11("C_GetAttributeValue"))?;
        self.public_key(attributes, label)
    }

    fn public_key(
        &self,
        attributes: Vec<Attribute>,
        key: &str,
    ) -> Result<PublicKey, ProvisionError> {
        let (mut modulus, mut exponent, mut point) = (None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::Modulus(n) => modulus = Some(n),
                Attribute::PublicExponent(e) => exponent = Some(e),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        match (modulus, exponent, point) {
            (Some(modulus), Some(exponent), _) => Ok(PublicKey::Rsa { modulus, exponent }),
            (_, _, Some(point)) => Ok(PublicKey::Ec { point }),
            _ => Err(ProvisionError::NoPublicKey {
                token: self.label.clone(),
                key: key.to_owned(),
            }),
        }
    }

    /// Writes a public certificate object.
    pub fn create_certificate(&self, cert: CertificateObject<'_>) -> Result<(), TokenError> {
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Id(cert.id.to_vec()),
                Attribute::Label(cert.label.as_bytes().to_vec()),
                Attribute::Subject(cert.subject.to_vec()),
                Attribute::Issuer(cert.issuer.to_vec()),
                Attribute::SerialNumber(cert.serial.to_vec()),
                Attribute::Value(cert.der.to_vec()),
            ])
            .map_err(TokenError::on(&self.label, "C_CreateObject"))?;
        Ok(())
    }
}
