//! Entra's limits and character rules for every string the admin API stores: no control or
//! bidirectional-formatting characters anywhere (they hide what an admin reads), UPNs in Entra's
//! alphabet and length, ids that stay addressable in a URL path, certificateUserIds in Entra's
//! grammar, and bounded lengths.

use crate::x509::dn::parse_dn;
use serde_json::Value;

/// Entra: a UPN is at most 113 characters, 64 before the `@` and 48 after it ("Property
/// UserPrincipalName requirements", Microsoft KB 2439357 and Entra's password-policies page; the
/// shared reference does not state them).
pub const MAX_UPN_CHARS: usize = 113;
pub const MAX_UPN_ALIAS_CHARS: usize = 64;
pub const MAX_UPN_DOMAIN_CHARS: usize = 48;
/// Entra: display names are at most 256 characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// Object ids (Graph's are GUIDs; the verifier also takes UPNs and short names).
pub const MAX_ID_CHARS: usize = 128;
/// Any other string in an admin body.
pub const MAX_STRING_CHARS: usize = 1024;
/// A base64 certificate in a CA upload.
pub const MAX_CERTIFICATE_CHARS: usize = 64 * 1024;

/// A value that breaks a rule: where (a field path such as `users[2].userPrincipalName`), and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same violation, its field placed under `parent` (`parent.field`).
    pub fn under(self, parent: impl FnOnce(&str) -> String) -> Self {
        Self {
            field: parent(&self.field),
            message: self.message,
        }
    }
}

/// Characters that never belong in stored text: C0 and C1 controls (tab, CR and LF aside, which
/// base64 and free text may carry) and the bidirectional formatting characters.
fn forbidden(c: char, allow_line_breaks: bool) -> bool {
    let bidi = matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let line = matches!(c, '\t' | '\n' | '\r');
    bidi || (c.is_control() && !(allow_line_breaks && line))
}

/// Refuses forbidden characters and lengths over `max` in `value`, named `field`.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), Violation> {
    check(field, value, max, false)
}

fn check(field: &str, value: &str, max: usize, allow_line_breaks: bool) -> Result<(), Violation> {
    if let Some(c) = value.chars().find(|&c| forbidden(c, allow_line_breaks)) {
        return Err(Violation::new(
            field.to_owned(),
            format!(
                "contains the control or formatting character U+{:04X}, which is not allowed",
                u32::from(c)
            ),
        ));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(Violation::new(
            field.to_owned(),
            format!("is {chars} characters long; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// Every string in a JSON body, keys included, at any depth: no forbidden characters and at most
/// [`MAX_STRING_CHARS`] (a `certificate`, [`MAX_CERTIFICATE_CHARS`], and it may break lines).
pub fn check_json_strings(value: &Value) -> Result<(), Violation> {
    walk(value, "", "")
}

fn walk(value: &Value, path: &str, key: &str) -> Result<(), Violation> {
    match value {
        Value::String(text) if key == "certificate" => {
            check(path, text, MAX_CERTIFICATE_CHARS, true)
        }
        Value::String(text) => check(path, text, MAX_STRING_CHARS, false),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| walk(item, &format!("{path}[{i}]"), key)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            check(&at, k, MAX_STRING_CHARS, false)?;
            walk(v, &at, k)
        }),
        _ => Ok(()),
    }
}

/// A UPN as Entra takes it: `alias@domain`, the alias of letters, digits and `' . - _ ! # ^ ~`,
/// the domain of letters, digits, `.` and `-`, within Entra's lengths.
pub fn check_upn(field: &str, upn: &str) -> Result<(), Violation> {
    check_text(field, upn, MAX_UPN_CHARS)?;
    let bad = |why: &str| {
        Err(Violation::new(
            field.to_owned(),
            format!("`{upn}` is not a valid UPN: {why}"),
        ))
    };
    let Some((alias, domain)) = upn.split_once('@') else {
        return bad("it needs alias@domain");
    };
    if alias.is_empty() || alias.chars().count() > MAX_UPN_ALIAS_CHARS {
        return bad(&format!(
            "the part before @ must be 1 to {MAX_UPN_ALIAS_CHARS} characters"
        ));
    }
    if domain.is_empty() || domain.chars().count() > MAX_UPN_DOMAIN_CHARS {
        return bad(&format!(
            "the part after @ must be 1 to {MAX_UPN_DOMAIN_CHARS} characters"
        ));
    }
    if alias.starts_with('.') || alias.ends_with('.') {
        return bad("the part before @ cannot start or end with a period");
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "'.-_!#^~".contains(*c)))
    {
        return bad(&format!("`{c}` is not allowed before the @"));
    }
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-".contains(*c)))
    {
        return bad(&format!("`{c}` is not allowed in the domain"));
    }
    // The domain must be one of the tenant's verified domains, so a DNS name: no empty label, and
    // none that starts or ends with a hyphen.
    if domain
        .split('.')
        .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return bad("the part after @ is not a domain name (an empty label, or one that starts or ends with -)");
    }
    Ok(())
}

/// The tags a certificateUserIds value starts with (`reference/entra-cba-spec.md` §1.1 and §1.3,
/// after CUID: `X509:<Mapping>` prefixes are case-sensitive).
const CERTIFICATE_USER_ID_FORMS: &str =
    "X509:<PN>upn, X509:<RFC822>email, X509:<I>issuer<S>subject, X509:<S>subject, X509:<SKI>hex, X509:<SHA1-PUKEY>hex or X509:<I>issuer<SR>serial";

/// One certificateUserIds value in the grammar of `reference/entra-cba-spec.md` §1.3: one of the
/// seven tagged forms, tags case-sensitive, DNs that parse, SKI, SHA-1 and serial in whole bytes of
/// hex. A value outside it could never match a certificate. (Lengths and the count per user are
/// `User::validate`'s: 1024 characters, 10 values, CUID.)
pub fn check_certificate_user_id(field: &str, value: &str) -> Result<(), Violation> {
    let refuse = |why: &str| {
        Err(Violation::new(
            field.to_owned(),
            format!("`{value}` is not a certificateUserIds value: {why}; the forms are {CERTIFICATE_USER_ID_FORMS} (tags are case-sensitive)"),
        ))
    };
    let is_dn = |text: &str| parse_dn(text).is_some();
    let Some(tagged) = value.strip_prefix("X509:") else {
        return refuse("it does not start with X509:");
    };
    if let Some(rest) = tagged
        .strip_prefix("<PN>")
        .or_else(|| tagged.strip_prefix("<RFC822>"))
    {
        if rest.trim().is_empty() {
            return refuse("the name after the tag is empty");
        }
    } else if let Some(rest) = tagged.strip_prefix("<SKI>") {
        if !is_hex(rest) {
            return refuse("a subject key identifier is hex");
        }
    } else if let Some(rest) = tagged.strip_prefix("<SHA1-PUKEY>") {
        if !(rest.len() == 40 && is_hex(rest)) {
            return refuse("a SHA-1 thumbprint is 40 hex digits");
        }
    } else if let Some(rest) = tagged.strip_prefix("<S>") {
        if !is_dn(rest) {
            return refuse("the subject is not a distinguished name");
        }
    } else if let Some(rest) = tagged.strip_prefix("<I>") {
        if let Some((issuer, serial)) = rest.split_once("<SR>") {
            if !is_dn(issuer) || !is_hex(serial) {
                return refuse(
                    "<I> needs an issuer distinguished name and <SR> a serial number in hex",
                );
            }
        } else if let Some((issuer, subject)) = rest.split_once("<S>") {
            if !is_dn(issuer) || !is_dn(subject) {
                return refuse("<I> and <S> each need a distinguished name");
            }
        } else {
            return refuse("<I> is followed by <S> or <SR>");
        }
    } else {
        return refuse("unknown tag");
    }
    Ok(())
}

/// An object id that stays addressable as one URL path segment.
pub fn check_id(field: &str, id: &str) -> Result<(), Violation> {
    check_text(field, id, MAX_ID_CHARS)?;
    if id.is_empty() {
        return Err(Violation::new(field.to_owned(), "must not be empty"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "@'.-_!#^~".contains(*c)))
    {
        return Err(Violation::new(
            field.to_owned(),
            format!("`{c}` is not allowed in an id (letters, digits and @ ' . - _ ! # ^ ~)"),
        ));
    }
    Ok(())
}

/// Whether `text` is an even number of hex digits, at least two.
pub fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upns_follow_entras_rules() {
        assert_eq!(check_upn("u", "alice.w@woodgrove.com"), Ok(()));
        assert!(check_upn("u", "alice@woodgrove.com\0").is_err());
        assert!(check_upn("u", "al\u{202E}ice@woodgrove.com").is_err());
        assert!(check_upn("u", &format!("{}@w.com", "a".repeat(65))).is_err());
        assert!(check_upn("u", &"a@".repeat(450_000)).is_err());
        assert!(check_upn("u", "a b@w.com").is_err());
        assert!(check_upn("u", "nobody").is_err());
    }

    #[test]
    fn json_strings_refuse_controls_at_any_depth() {
        let body = serde_json::json!({"rules": [{"identifier": "CN=x\u{0}"}]});
        assert_eq!(
            check_json_strings(&body).unwrap_err().field,
            "rules[0].identifier"
        );
        let body = serde_json::json!({"certificate": "MIIB\nAAAA"});
        assert_eq!(check_json_strings(&body), Ok(()));
        let body = serde_json::json!({"displayName": "a\u{2067}b"});
        assert!(check_json_strings(&body).is_err());
    }

    #[test]
    fn upn_domains_are_domain_names() {
        assert_eq!(check_upn("u", "bob@woodgrove"), Ok(()));
        for bad in [
            "bob@woodgrove..com",
            "bob@.woodgrove.com",
            "bob@woodgrove.com.",
            "bob@-w.com",
        ] {
            assert!(check_upn("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn certificate_user_ids_follow_the_grammar() {
        for good in [
            "X509:<PN>bob@woodgrove.com",
            "X509:<RFC822>bob@woodgrove.com",
            "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest",
            "X509:<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest",
            "X509:<SKI>C6F4E96C0A",
            "X509:<SHA1-PUKEY>0123456789abcdef0123456789ABCDEF01234567",
            "X509:<I>C=US,O=Woodgrove Bank,CN=Woodgrove Root CA<SR>4242",
        ] {
            assert_eq!(check_certificate_user_id("v", good), Ok(()), "{good}");
        }
        for bad in [
            "X509:<pn>bob@woodgrove.com",
            "x509:<PN>bob@woodgrove.com",
            "X509:<UPN>bob@woodgrove.com",
            "X509:<PN>",
            "X509:<SKI>not-hex",
            "X509:<SKI>ABC",
            "X509:<SHA1-PUKEY>ABCD",
            "X509:<I>C=US,CN=Root",
            "X509:<S>not a name",
            "X509:<I>C=US,CN=Root<SR>zz",
        ] {
            assert!(check_certificate_user_id("v", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_stay_addressable() {
        assert_eq!(check_id("id", "cba-users"), Ok(()));
        assert!(check_id("id", "a/b").is_err());
        assert!(check_id("id", "").is_err());
    }
}
