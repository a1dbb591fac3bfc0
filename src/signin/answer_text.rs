//! A sign-in's answer for a person: who signed in, how strongly, by which binding and rule, with
//! which certificate. Every value is the server's or the token's words, shown through
//! `printable`.

use std::io::Write;

use serde_json::Value;

use super::protocol::SignInAnswer;
use crate::printable::printable;

/// The server's answer for a person; `offered` is the certificate the TLS handshake presented.
pub fn write_answer(
    out: &mut impl Write,
    answer: &SignInAnswer,
    offered: Option<String>,
) -> std::io::Result<()> {
    // Every value is the server's or the token's words: shown through `printable`.
    if !answer.succeeded() {
        writeln!(
            out,
            "Sign-in refused: {}: {}",
            printable(answer.error_code.as_deref().unwrap_or("(no error code)")),
            printable(answer.message.as_deref().unwrap_or("(no message)"))
        )?;
        if let Some(offered) = offered {
            writeln!(out, "  certificate       {}", printable(&offered))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "Signed in as {}",
        printable(
            answer
                .user_principal_name
                .as_deref()
                .unwrap_or("(the server did not say)")
        )
    )?;
    if let Some(strength) = &answer.authentication_strength {
        writeln!(out, "  strength          {}", printable(strength))?;
    }
    if let Some(binding) = &answer.username_binding {
        writeln!(
            out,
            "  username binding  {}",
            printable(&describe_binding(binding))
        )?;
    }
    if let Some(rule) = &answer.authentication_rule {
        writeln!(
            out,
            "  rule              {}",
            printable(&describe_rule(rule))
        )?;
    }
    if let Some(offered) = offered {
        writeln!(out, "  certificate       {}", printable(&offered))?;
    }
    if let Some(expires) = &answer.expires_at {
        writeln!(out, "  token expires     {}", printable(expires))?;
    }
    Ok(())
}

fn describe_binding(binding: &Value) -> String {
    match (
        binding["x509CertificateField"].as_str(),
        binding["userProperty"].as_str(),
    ) {
        (Some(field), Some(property)) => {
            let mut text = format!("{field} -> {property}");
            if let Some(priority) = binding["priority"].as_u64() {
                text.push_str(&format!(" (priority {priority}"));
                if let Some(affinity) = binding["trustAffinityLevel"].as_str() {
                    text.push_str(&format!(", {affinity} affinity"));
                }
                text.push(')');
            }
            text
        }
        _ => describe_value(binding),
    }
}

/// Graph's x509CertificateRule shape in a line: "policyOID 1.2.3.4 -> multiFactor".
fn describe_rule(rule: &Value) -> String {
    let Some(kind) = rule["x509CertificateRuleType"].as_str() else {
        return describe_value(rule);
    };
    let mode = match rule["x509CertificateAuthenticationMode"].as_str() {
        Some("x509CertificateMultiFactor") => "multiFactor",
        Some("x509CertificateSingleFactor") => "singleFactor",
        Some(other) => other,
        None => "?",
    };
    match rule["identifier"].as_str() {
        Some(identifier) => format!("{kind} {identifier} -> {mode}"),
        None => format!("{kind} -> {mode}"),
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The certificate an agent's `sign-in` result says signed, named as a direct sign-in names it
/// (by subject); by thumbprint only for a sign-in cached by an agent that did not keep the
/// subject.
pub fn signed_with(result: &Value) -> Option<String> {
    let signed_with = &result["signedWith"];
    let token = signed_with["token"].as_str()?;
    Some(
        match signed_with["certificate"]
            .as_str()
            .filter(|c| !c.is_empty())
        {
            Some(certificate) => format!("{certificate} on `{token}`"),
            None => format!(
                "SHA-256 {} on `{token}`",
                signed_with["certificateSha256"].as_str().unwrap_or("?")
            ),
        },
    )
}
