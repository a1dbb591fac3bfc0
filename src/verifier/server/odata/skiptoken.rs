//! `$skiptoken`s: where the next page starts (the sort key of the last item given), sealed with
//! an HMAC under a key made at process start and bound to the query it continues. A token that
//! was altered, made up, or comes from another query or from before a restart does not read.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Bytes of the HMAC kept in a token.
const TAG_LEN: usize = 16;

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut secret = [0u8; 32];
        // As for `random_id`: the system RNG failing is not recoverable in any useful way.
        let _ = ring::rand::SystemRandom::new().fill(&mut secret);
        hmac::Key::new(hmac::HMAC_SHA256, &secret)
    })
}

fn tag(scope: &str, position: &str) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key());
    context.update(scope.as_bytes());
    context.update(&[0]);
    context.update(position.as_bytes());
    context.sign()
}

/// A token for continuing the query `scope` after `position`.
pub fn issue(scope: &str, position: &str) -> String {
    let mut bytes = tag(scope, position).as_ref()[..TAG_LEN].to_vec();
    bytes.extend_from_slice(position.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a token for `scope` holds, if it is one this process issued for that query.
pub fn read(scope: &str, token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() < TAG_LEN {
        return None;
    }
    let (given, position) = bytes.split_at(TAG_LEN);
    let position = String::from_utf8(position.to_vec()).ok()?;
    let expected = tag(scope, &position);
    bool::from(expected.as_ref()[..TAG_LEN].ct_eq(given)).then_some(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_only_unaltered_and_for_their_query() {
        let token = issue("users?$top=2", "bob@woodgrove.com\nbob");
        assert_eq!(
            read("users?$top=2", &token).as_deref(),
            Some("bob@woodgrove.com\nbob")
        );
        assert_eq!(read("users?$top=3", &token), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert_eq!(read("users?$top=2", &URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(read("users?$top=2", "not base64!"), None);
        assert_eq!(read("users?$top=2", ""), None);
        assert_eq!(
            read("users?$top=2", &URL_SAFE_NO_PAD.encode("forged-offset-100")),
            None
        );
    }
}
