//! Distinguished names rendered the way Entra's certificateUserIds store them: RDNs in ASN.1 encoding
//! order (root-most first), `,` with no spaces, one element per attribute, Windows short names, and
//! .NET-style quoting (`reference/entra-cba-spec.md` §1.3).

use x509_parser::x509::X509Name;

/// Renders `name` in Entra's certificateUserIds DN format, e.g.
/// `C=US,O=Woodgrove Bank,OU=Users,CN=Alice Wilber`.
pub fn entra_dn(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let label = short_name(&oid).map_or_else(|| format!("OID.{oid}"), str::to_owned);
            let value = match atv.as_str() {
                Ok(text) => quote(text),
                // Not a string type: show the raw value's bytes, as Windows does for unknown types.
                Err(_) => format!("#{}", super::hex(atv.attr_value().data)),
            };
            parts.push(format!("{label}={value}"));
        }
    }
    parts.join(",")
}

/// A DER Name in Entra's DN format; one that does not parse is shown as its hex.
pub fn dn_string(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match X509Name::from_der(der) {
        Ok((_, name)) => entra_dn(&name),
        Err(_) => format!("(unparsable name {})", super::hex(der)),
    }
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "S",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "T",
        "2.5.4.42" => "G",
        "2.5.4.43" => "I",
        "1.2.840.113549.1.9.1" => "E",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// .NET X500NameEncoder quoting: wrap in quotes when empty, padded with whitespace, or holding a
/// special character; double embedded quotes.
fn quote(value: &str) -> String {
    let padded = value.starts_with(|c: char| c == ' ' || ('\t'..='\r').contains(&c))
        || value.ends_with(|c: char| c == ' ' || ('\t'..='\r').contains(&c));
    let special = value.contains([',', '+', '=', '"', '\n', '<', '>', '#', ';']);
    if value.is_empty() || padded || special {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Splits a DN string (`CN=Woodgrove CA,O=Woodgrove` or `C=US, O=..., CN=...`) into attribute
/// type and value pairs, in the order written. Quoted values may hold commas. `None` when it is
/// not a DN.
pub fn parse_dn(text: &str) -> Option<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '\\' => current.extend(chars.next()),
            ',' | ';' | '+' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return None;
    }
    parts.push(current);
    let mut attributes = Vec::new();
    for part in parts {
        let (ty, value) = part.split_once('=')?;
        let ty = ty.trim();
        let valid_type = !ty.is_empty()
            && ty
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid_type {
            return None;
        }
        attributes.push((canonical_type(ty), value.trim().to_owned()));
    }
    (!attributes.is_empty()).then_some(attributes)
}

/// One spelling per attribute type: Windows and RFC 4514 names differ for a few.
fn canonical_type(ty: &str) -> String {
    let upper = ty.to_ascii_uppercase();
    let upper = upper
        .strip_prefix("OID.")
        .map(str::to_owned)
        .unwrap_or(upper);
    match upper.as_str() {
        "S" | "ST" | "2.5.4.8" => "ST".into(),
        "E" | "EMAIL" | "EMAILADDRESS" | "1.2.840.113549.1.9.1" => "E".into(),
        "CN" | "2.5.4.3" => "CN".into(),
        "O" | "2.5.4.10" => "O".into(),
        "OU" | "2.5.4.11" => "OU".into(),
        "C" | "2.5.4.6" => "C".into(),
        "L" | "2.5.4.7" => "L".into(),
        "DC" | "0.9.2342.19200300.100.1.25" => "DC".into(),
        _ => upper,
    }
}

/// A comparison key for a DN written in either order (display order, CN first, or encoding
/// order), case and surrounding whitespace ignored. Invalid DNs key as themselves, trimmed.
pub fn normalized_dn(text: &str) -> String {
    let Some(attributes) = parse_dn(text) else {
        return text.trim().to_lowercase();
    };
    let render = |items: &mut dyn Iterator<Item = &(String, String)>| {
        items
            .map(|(ty, value)| format!("{ty}={}", value.to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let forward = render(&mut attributes.iter());
    let backward = render(&mut attributes.iter().rev());
    forward.min(backward)
}

/// Whether two encoded Names are the same name, as RFC 5280 §7.1 compares them for name chaining:
/// byte-equal, or RDN by RDN with the same attribute types and string values equal once case is
/// folded and runs of spaces collapsed (the canonical form OpenSSL compares). A Name that does not
/// parse matches only itself, byte for byte.
pub fn same_name(a_der: &[u8], b_der: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    if a_der == b_der {
        return true;
    }
    let (Ok((_, a)), Ok((_, b))) = (X509Name::from_der(a_der), X509Name::from_der(b_der)) else {
        return false;
    };
    let (a, b): (Vec<_>, Vec<_>) = (a.iter_rdn().collect(), b.iter_rdn().collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(a, b)| {
            let (a, b): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
            a.len() == b.len()
                && a.iter().zip(&b).all(|(a, b)| {
                    a.attr_type() == b.attr_type()
                        && match (a.as_str(), b.as_str()) {
                            (Ok(a), Ok(b)) => canonical_value(a) == canonical_value(b),
                            _ => a.attr_value().data == b.attr_value().data,
                        }
                })
        })
}

/// Case folded, leading and trailing spaces dropped, inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_in_either_order() {
        assert_eq!(
            normalized_dn("CN=Woodgrove Issuing CA 01, OU=PKI, O=Woodgrove Bank, C=US "),
            normalized_dn("C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01")
        );
        assert_eq!(
            normalized_dn("cn=WoodgroveCA "),
            normalized_dn("CN=WoodgroveCA")
        );
        assert_ne!(normalized_dn("CN=A,O=B"), normalized_dn("CN=A,O=C"));
        assert_eq!(parse_dn("not a dn"), None);
        assert_eq!(
            parse_dn("CN=\"Wilber, Alice\",O=W"),
            Some(vec![
                ("CN".into(), "Wilber, Alice".into()),
                ("O".into(), "W".into())
            ])
        );
    }

    #[test]
    fn quoting_follows_dotnet() {
        assert_eq!(quote("Alice Wilber"), "Alice Wilber");
        assert_eq!(quote("Wilber, Alice"), "\"Wilber, Alice\"");
        assert_eq!(quote(" lead"), "\" lead\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote(""), "\"\"");
    }

    fn name_der(attributes: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        for (ty, value) in attributes {
            name.push(ty.clone(), *value);
        }
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        parsed.tbs_certificate.subject.as_raw().to_vec()
    }

    #[test]
    fn names_chain_by_rfc5280_comparison() {
        use rcgen::DnType::{CommonName, OrganizationName};
        let issuing = name_der(&[
            (OrganizationName, "Woodgrove Bank"),
            (CommonName, "Issuing CA"),
        ]);
        let spaced = name_der(&[
            (OrganizationName, "woodgrove  BANK "),
            (CommonName, "issuing ca"),
        ]);
        let root = name_der(&[
            (OrganizationName, "Woodgrove Bank"),
            (CommonName, "Root CA"),
        ]);
        let reordered = name_der(&[
            (CommonName, "Issuing CA"),
            (OrganizationName, "Woodgrove Bank"),
        ]);
        assert!(same_name(&issuing, &issuing));
        assert!(same_name(&issuing, &spaced));
        assert!(!same_name(&issuing, &root));
        assert!(!same_name(&issuing, &reordered));
        assert!(!same_name(&issuing, b"not a name"));
    }
}
