//! A parsed `$filter` held to what a resource supports (which properties filter, with which
//! operators, which need Graph's advanced query parameters), then evaluated over the JSON of each
//! item. Strings compare case-insensitively, as the directory's do; a missing property is `null`.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::filter::{AnyTest, Expr, Literal, Op};
use super::QueryError;

/// What a filterable property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    DateTime,
    /// A collection of strings: only the `any` lambda tests it.
    TextCollection,
}

/// A property `$filter` may name, by its path.
#[derive(Debug)]
pub struct Property {
    pub path: &'static str,
    pub kind: Kind,
}

/// The filter rules of one resource.
#[derive(Debug)]
pub struct FilterRules {
    /// Graph's resource name in its messages (`User`, `Group`, `signIn`).
    pub resource: &'static str,
    pub properties: &'static [Property],
    /// A directory object: `ne`, `not` and `any` need `ConsistencyLevel: eventual` and
    /// `$count=true`, as Graph's advanced queries do.
    pub directory: bool,
}

impl FilterRules {
    /// `Ok` if every clause is supported; the first advanced operator found, if any, so the
    /// caller can demand the advanced query parameters.
    pub fn check(&self, expr: &Expr) -> Result<Option<&'static str>, QueryError> {
        let unsupported = |path: &str| QueryError::unsupported_clause(path, self.resource);
        let advanced = |op: &'static str| Ok(self.directory.then_some(op));
        match expr {
            Expr::And(a, b) | Expr::Or(a, b) => {
                let first = self.check(a)?;
                let second = self.check(b)?;
                Ok(first.or(second))
            }
            Expr::Not(inner) => {
                self.check(inner)?;
                advanced("not")
            }
            Expr::Compare { path, op, value } => {
                let kind = self.kind(path).ok_or_else(|| unsupported(path))?;
                let fits = match (kind, value) {
                    (Kind::Text, Literal::Text(_) | Literal::Null) => matches!(op, Op::Eq | Op::Ne),
                    (Kind::Int, Literal::Int(_)) => true,
                    (Kind::DateTime, Literal::DateTime(_)) => true,
                    _ => false,
                };
                if !fits {
                    return Err(unsupported(path));
                }
                if *op == Op::Ne {
                    return advanced("ne");
                }
                Ok(None)
            }
            Expr::In { path, values } => {
                let kind = self.kind(path).ok_or_else(|| unsupported(path))?;
                let fits = values.iter().all(|v| {
                    matches!(
                        (kind, v),
                        (Kind::Text, Literal::Text(_)) | (Kind::Int, Literal::Int(_))
                    )
                });
                if fits {
                    Ok(None)
                } else {
                    Err(unsupported(path))
                }
            }
            Expr::Function {
                name,
                path,
                argument,
            } => {
                if name != "startswith" {
                    return Err(QueryError::unsupported_function(name));
                }
                match (self.kind(path), argument) {
                    (Some(Kind::Text), Literal::Text(_)) => Ok(None),
                    _ => Err(unsupported(path)),
                }
            }
            Expr::Any { path, .. } => match self.kind(path) {
                Some(Kind::TextCollection) => advanced("any"),
                _ => Err(unsupported(path)),
            },
        }
    }

    fn kind(&self, path: &str) -> Option<Kind> {
        self.properties
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.kind)
    }
}

/// Whether `item` passes `expr` (already [`FilterRules::check`]ed).
pub fn matches(expr: &Expr, item: &Value) -> bool {
    match expr {
        Expr::And(a, b) => matches(a, item) && matches(b, item),
        Expr::Or(a, b) => matches(a, item) || matches(b, item),
        Expr::Not(inner) => !matches(inner, item),
        Expr::Compare { path, op, value } => compare(at(item, path), *op, value),
        Expr::In { path, values } => {
            let found = at(item, path);
            values.iter().any(|v| compare(found, Op::Eq, v))
        }
        Expr::Function { path, argument, .. } => match (at(item, path), argument) {
            (Some(Value::String(s)), Literal::Text(prefix)) => starts_with(s, prefix),
            _ => false,
        },
        Expr::Any { path, test } => {
            at(item, path)
                .and_then(Value::as_array)
                .is_some_and(|members| {
                    members
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|m| match test {
                            AnyTest::Eq(v) => fold(m) == fold(v),
                            AnyTest::StartsWith(prefix) => starts_with(m, prefix),
                        })
                })
        }
    }
}

fn at<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/')
        .try_fold(item, |value, key| value.get(key))
        .filter(|v| !v.is_null())
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

fn starts_with(text: &str, prefix: &str) -> bool {
    fold(text).starts_with(&fold(prefix))
}

fn compare(found: Option<&Value>, op: Op, wanted: &Literal) -> bool {
    let ordering = match (found, wanted) {
        (None, Literal::Null) => Some(std::cmp::Ordering::Equal),
        (Some(_), Literal::Null) => None,
        (Some(Value::String(s)), Literal::Text(t)) => Some(fold(s).cmp(&fold(t))),
        (Some(Value::Number(n)), Literal::Int(i)) => n.as_i64().map(|n| n.cmp(i)),
        (Some(Value::String(s)), Literal::DateTime(t)) => {
            OffsetDateTime::parse(s, &Rfc3339).ok().map(|at| at.cmp(t))
        }
        _ => None,
    };
    // Nothing to compare (a null against a value, or a value that does not read) is only ne.
    let Some(ordering) = ordering else {
        return op == Op::Ne;
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        Op::Eq => ordering == Equal,
        Op::Ne => ordering != Equal,
        Op::Gt => ordering == Greater,
        Op::Ge => ordering != Less,
        Op::Lt => ordering == Less,
        Op::Le => ordering != Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::parse;
    use super::*;
    use serde_json::json;

    static RULES: FilterRules = FilterRules {
        resource: "User",
        properties: &[
            Property {
                path: "userPrincipalName",
                kind: Kind::Text,
            },
            Property {
                path: "displayName",
                kind: Kind::Text,
            },
            Property {
                path: "status/errorCode",
                kind: Kind::Int,
            },
            Property {
                path: "createdDateTime",
                kind: Kind::DateTime,
            },
            Property {
                path: "authorizationInfo/certificateUserIds",
                kind: Kind::TextCollection,
            },
        ],
        directory: true,
    };

    fn eval(filter: &str, item: &Value) -> bool {
        let expr = parse(filter).unwrap();
        RULES.check(&expr).unwrap();
        matches(&expr, item)
    }

    #[test]
    fn evaluates_over_json() {
        let alice = json!({
            "userPrincipalName": "Alice@woodgrove.com",
            "status": {"errorCode": 0},
            "createdDateTime": "2026-03-01T10:00:00.0000000Z",
            "authorizationInfo": {"certificateUserIds": ["X509:<PN>alice@woodgrove.com"]}
        });
        assert!(eval("userPrincipalName eq 'alice@WOODGROVE.com'", &alice));
        assert!(eval("startswith(userPrincipalName,'al')", &alice));
        assert!(!eval("startswith(userPrincipalName,'b')", &alice));
        assert!(eval("displayName eq null", &alice));
        assert!(eval("displayName ne 'x'", &alice));
        assert!(eval(
            "status/errorCode eq 0 and createdDateTime ge 2026-03-01",
            &alice
        ));
        assert!(!eval("createdDateTime gt 2026-03-01T10:00:00Z", &alice));
        assert!(eval(
            "authorizationInfo/certificateUserIds/any(x:x eq 'X509:<PN>alice@woodgrove.com')",
            &alice
        ));
        assert!(eval(
            "not(authorizationInfo/certificateUserIds/any(x:startswith(x,'X509:<SKI>')))",
            &alice
        ));
        assert!(eval(
            "userPrincipalName in ('x', 'alice@woodgrove.com')",
            &alice
        ));
    }

    #[test]
    fn unsupported_clauses_and_advanced_operators() {
        for filter in [
            "nope eq 'a'",
            "displayName gt 'a'",
            "userPrincipalName eq 3",
            "status/errorCode eq '0'",
            "startswith(status/errorCode, 'a')",
            "displayName/any(x:x eq 'a')",
        ] {
            let error = RULES.check(&parse(filter).unwrap()).unwrap_err();
            assert!(
                error.message.starts_with(
                    "Unsupported or invalid query filter clause specified for property '"
                ),
                "{filter}: {}",
                error.message
            );
        }
        let error = RULES
            .check(&parse("endswith(displayName,'a')").unwrap())
            .unwrap_err();
        assert!(error.message.contains("endswith"), "{}", error.message);
        assert_eq!(
            RULES.check(&parse("displayName ne 'a'").unwrap()).unwrap(),
            Some("ne")
        );
        assert_eq!(
            RULES
                .check(&parse("userPrincipalName eq 'a' or not(displayName eq 'b')").unwrap())
                .unwrap(),
            Some("not")
        );
        assert_eq!(
            RULES.check(&parse("displayName eq 'a'").unwrap()).unwrap(),
            None
        );
    }
}
