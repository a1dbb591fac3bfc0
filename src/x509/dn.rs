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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_dotnet() {
        assert_eq!(quote("Alice Wilber"), "Alice Wilber");
        assert_eq!(quote("Wilber, Alice"), "\"Wilber, Alice\"");
        assert_eq!(quote(" lead"), "\" lead\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote(""), "\"\"");
    }
}
