//! RFC 7512 `pkcs11:` URIs that name a certificate on a token.

/// The identifying attributes of a certificate object on a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectUri {
    pub token: String,
    pub manufacturer: String,
    pub serial: String,
    pub model: String,
    pub object: Option<String>,
    pub id: Vec<u8>,
}

impl ObjectUri {
    /// `pkcs11:token=...;manufacturer=...;serial=...;model=...;object=...;id=%01;type=cert`
    pub fn certificate(&self) -> String {
        let mut parts = vec![
            format!("token={}", encode(self.token.as_bytes())),
            format!("manufacturer={}", encode(self.manufacturer.as_bytes())),
            format!("serial={}", encode(self.serial.as_bytes())),
            format!("model={}", encode(self.model.as_bytes())),
        ];
        if let Some(object) = &self.object {
            parts.push(format!("object={}", encode(object.as_bytes())));
        }
        if !self.id.is_empty() {
            // CKA_ID is binary: always percent-encode every byte.
            let id: String = self.id.iter().map(|b| format!("%{b:02X}")).collect();
            parts.push(format!("id={id}"));
        }
        parts.push("type=cert".to_owned());
        format!("pkcs11:{}", parts.join(";"))
    }
}

/// Percent-encodes everything but RFC 7512's unreserved and pk11-res-avail path characters.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path attributes certauth understands.
const KNOWN_ATTRIBUTES: &[&str] = &[
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
];

/// Parses a `pkcs11:` URI naming a certificate into its path attributes, values percent-decoded.
/// Query attributes (`?pin-value=...`) are ignored: they never choose an object.
pub fn parse(uri: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let rest = uri
        .strip_prefix("pkcs11:")
        .ok_or("it does not start with pkcs11:")?;
    let path = rest.split('?').next().unwrap_or_default();
    let mut attributes = Vec::new();
    for part in path.split(';').filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not name=value"))?;
        if !KNOWN_ATTRIBUTES.contains(&name) {
            return Err(format!("unsupported attribute `{name}`"));
        }
        let value = decode(value).ok_or_else(|| format!("bad escape in `{part}`"))?;
        if name == "type" && value != b"cert" {
            return Err("type must be cert".into());
        }
        attributes.push((name.to_owned(), value));
    }
    Ok(attributes)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_attributes_as_rfc7512_says() {
        let uri = ObjectUri {
            token: "Woodgrove Alice".into(),
            manufacturer: "SoftHSM project".into(),
            serial: "f190354db0ac8909".into(),
            model: "SoftHSM v2".into(),
            object: Some("alice;rsa/2048".into()),
            id: vec![0x01, 0xab],
        };
        assert_eq!(
            uri.certificate(),
            "pkcs11:token=Woodgrove%20Alice;manufacturer=SoftHSM%20project;serial=f190354db0ac8909;\
             model=SoftHSM%20v2;object=alice%3Brsa%2F2048;id=%01%AB;type=cert"
        );
        let parsed = parse(&uri.certificate()).unwrap();
        assert_eq!(parsed[0], ("token".to_owned(), b"Woodgrove Alice".to_vec()));
        assert_eq!(parsed[4], ("object".to_owned(), b"alice;rsa/2048".to_vec()));
        assert_eq!(parsed[5], ("id".to_owned(), vec![0x01, 0xab]));
    }
}
