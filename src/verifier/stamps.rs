//! The identifiers and times the verifier assigns: random ids (log lines, token ids), Graph-style
//! object GUIDs, and now as the log and tokens write it.

use ring::rand::SystemRandom;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::x509::hex;

/// Now, as the log and tokens write it.
pub fn now_text() -> String {
    let now = OffsetDateTime::now_utc();
    now.format(&Rfc3339).unwrap_or_else(|_| now.to_string())
}

/// A random identifier (128 bits, hex).
pub fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; a zero id is still unique
    // enough for a log line, and the JWT keys are made elsewhere.
    let _ = SystemRandom::new().fill(&mut bytes);
    hex(&bytes)
}

/// A random object id in Graph's form: a version-4 GUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
pub fn random_guid() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
