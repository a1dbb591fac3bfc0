//! Finding objects on a token and reading their attributes (C_FindObjects, C_GetAttributeValue).
//! Objects are matched by class and CKA_ID, the pairing between a certificate and its keys.

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The first object of `class` whose CKA_ID is `id`.
pub(crate) fn find_one(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Result<Option<ObjectHandle>, CkError> {
    Ok(session
        .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?
        .into_iter()
        .next())
}

/// The private key whose CKA_ID is `id`.
pub(crate) fn find_private_key(
    session: &Session,
    id: &[u8],
) -> Result<Option<ObjectHandle>, CkError> {
    find_one(session, ObjectClass::PRIVATE_KEY, id)
}

/// Whether `key` wants a login before every signature (CKA_ALWAYS_AUTHENTICATE).
pub(crate) fn always_authenticate(session: &Session, key: ObjectHandle) -> Result<bool, CkError> {
    Ok(session
        .get_attributes(key, &[AttributeType::AlwaysAuthenticate])?
        .into_iter()
        .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true))))
}
