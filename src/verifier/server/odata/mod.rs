//! Graph's collection responses for the admin API's lists (`@odata.context`, `value`,
//! `@odata.nextLink` with an issued `$skiptoken`, `@odata.count`) and the OData query options they
//! take: `$select`, `$filter`, `$top`, `$count`, `$skiptoken`. An option the verifier does not
//! support is a 400 naming it, never ignored (Graph ignores some silently; a verifier that did
//! would hand back answers to a question that was not asked).
//!
//! `@odata.context` and `@odata.nextLink` are absolute URLs on the verifier's own base (the
//! `Host` the request came to, over https), not graph.microsoft.com: a nextLink must lead back
//! here, and the context names the same entity sets Graph's `$metadata` does.

pub mod eval;
pub mod filter;
mod skiptoken;

use std::ops::ControlFlow;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use eval::{FilterRules, Kind, Property};
use filter::Expr;

/// A query option or filter the request cannot have: always a 400, in Graph's error shape.
#[derive(Debug)]
pub struct QueryError {
    pub code: &'static str,
    pub message: String,
}

impl QueryError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            code: "BadRequest",
            message: message.into(),
        }
    }

    fn unsupported(message: impl Into<String>) -> Self {
        Self {
            code: "Request_UnsupportedQuery",
            message: message.into(),
        }
    }

    /// Graph's words for a property or operator `$filter` does not support on a resource.
    pub fn unsupported_clause(path: &str, resource: &str) -> Self {
        Self::unsupported(format!(
            "Unsupported or invalid query filter clause specified for property '{path}' of resource '{resource}'."
        ))
    }

    pub fn unsupported_function(name: &str) -> Self {
        Self::unsupported(format!(
            "Unsupported query filter function '{name}': $filter takes eq, ne, gt, ge, lt, le, in, startswith, not, and, or, and any() where a property supports them."
        ))
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

/// One collection the admin API lists.
#[derive(Debug)]
pub struct Resource {
    /// The entity set after `$metadata#` (`users`, `auditLogs/signIns`).
    pub entity_set: &'static str,
    /// The item type, for `$select` errors (`microsoft.graph.user`).
    pub type_name: &'static str,
    pub filter: FilterRules,
    /// Whether `$select` may name a property.
    pub selectable: fn(&str) -> bool,
    /// A page without `$top`, and the most `$top` may ask for.
    pub default_top: usize,
    pub max_top: usize,
    /// Newest first (the sign-in log): sort keys descend.
    pub descending: bool,
}

const fn text(path: &'static str) -> Property {
    Property {
        path,
        kind: Kind::Text,
    }
}

pub static USERS: Resource = Resource {
    entity_set: "users",
    type_name: "microsoft.graph.user",
    filter: FilterRules {
        resource: "User",
        properties: &[
            text("id"),
            text("userPrincipalName"),
            text("displayName"),
            text("onPremisesUserPrincipalName"),
            Property {
                path: "authorizationInfo/certificateUserIds",
                kind: Kind::TextCollection,
            },
        ],
        directory: true,
    },
    selectable: |p| {
        crate::verifier::graph_schema::declares(&crate::verifier::graph_schema::USER, p)
    },
    default_top: 100,
    max_top: 999,
    descending: false,
};

pub static GROUPS: Resource = Resource {
    entity_set: "groups",
    type_name: "microsoft.graph.group",
    filter: FilterRules {
        resource: "Group",
        properties: &[text("id"), text("displayName")],
        directory: true,
    },
    selectable: |p| {
        crate::verifier::graph_schema::declares(&crate::verifier::graph_schema::GROUP, p)
    },
    default_top: 100,
    max_top: 999,
    descending: false,
};

pub static CERTIFICATE_AUTHORITIES: Resource = Resource {
    entity_set: "directory/publicKeyInfrastructure/certificateBasedAuthConfigurations('default')/certificateAuthorities",
    type_name: "microsoft.graph.certificateAuthorityDetail",
    filter: FilterRules {
        resource: "certificateAuthorityDetail",
        properties: &[
            text("id"),
            text("issuer"),
            text("issuerSubjectKeyIdentifier"),
            text("issuerSki"),
            text("thumbprint"),
            text("certificateAuthorityType"),
        ],
        directory: false,
    },
    selectable: crate::verifier::graph_schema::certificate_authority_declares,
    default_top: 100,
    max_top: 999,
    descending: false,
};

pub static SIGN_INS: Resource = Resource {
    entity_set: "auditLogs/signIns",
    type_name: "microsoft.graph.signIn",
    filter: FilterRules {
        resource: "signIn",
        properties: &[
            text("id"),
            text("userPrincipalName"),
            text("ipAddress"),
            text("authenticationRequirement"),
            Property {
                path: "createdDateTime",
                kind: Kind::DateTime,
            },
            Property {
                path: "status/errorCode",
                kind: Kind::Int,
            },
        ],
        directory: false,
    },
    selectable: |p| super::graph_sign_in::PROPERTIES.contains(&p),
    default_top: 100,
    max_top: 1000,
    descending: true,
};

/// A list request as it came: its query pairs, in order, and what the response needs to know.
#[derive(Debug)]
pub struct ListRequest {
    pairs: Vec<(String, String)>,
    base: String,
    path: String,
    eventual: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ListRequest {
    type Rejection = QueryError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| QueryError::bad(format!("the query string does not read: {e}")))?;
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
            .map_or_else(|| "localhost".to_owned(), |a| a.to_string());
        let eventual = parts
            .headers
            .get("consistencylevel")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"));
        Ok(Self {
            pairs,
            base: format!("https://{host}"),
            path: parts.uri.path().to_owned(),
            eventual,
        })
    }
}

/// The options of a list request, checked against its resource.
#[derive(Debug)]
pub struct ListQuery<'a> {
    resource: &'a Resource,
    request: &'a ListRequest,
    filter: Option<Expr>,
    select: Option<Vec<String>>,
    top: usize,
    count: bool,
    after: Option<String>,
}

/// Options Graph has that the verifier does not implement.
const UNSUPPORTED: &[&str] = &[
    "expand", "orderby", "search", "skip", "format", "apply", "compute", "index", "levels",
];

/// The list options' texts, as given.
#[derive(Default)]
struct OptionTexts<'a> {
    filter: Option<&'a str>,
    select: Option<&'a str>,
    top: Option<&'a str>,
    count: Option<&'a str>,
    token: Option<&'a str>,
}

/// `$top`: a whole number from 1 to the resource's largest page.
fn parse_top(text: &str, resource: &Resource) -> Result<usize, QueryError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=resource.max_top).contains(n))
        .ok_or_else(|| {
            QueryError::bad(format!(
                "Invalid value '{text}' for the query option '$top': give a whole number from 1 to {}.",
                resource.max_top
            ))
        })
}

/// `$count`: `true` or `false`, and false when not given.
fn parse_count(text: Option<&str>) -> Result<bool, QueryError> {
    match text.map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(QueryError::bad(format!(
            "Invalid value '{other}' for the query option '$count': true or false."
        ))),
    }
}

impl ListRequest {
    /// The options, each checked: unknown, unsupported, repeated or invalid ones are a 400
    /// naming them.
    pub fn query<'a>(&'a self, resource: &'a Resource) -> Result<ListQuery<'a>, QueryError> {
        let options = self.options()?;
        let top = match options.top {
            None => resource.default_top,
            Some(text) => parse_top(text, resource)?,
        };
        let count = parse_count(options.count)?;
        let select = options
            .select
            .map(|text| parse_select(text, resource))
            .transpose()?;
        let filter = options
            .filter
            .map(|text| self.parse_filter(text, resource, count))
            .transpose()?;
        if count && resource.filter.directory && !self.eventual {
            return Err(QueryError::unsupported(
                "$count=true needs the header ConsistencyLevel: eventual: directory objects are counted only in advanced queries (Graph would leave @odata.count out; this verifier does not drop an option silently).",
            ));
        }
        let after = options
            .token
            .map(|token| {
                skiptoken::read(&self.scope(resource), token).ok_or_else(|| {
                    QueryError::bad(
                        "The $skiptoken is not valid: follow a previous page's @odata.nextLink as it was given (tokens do not survive a restart of the verifier).",
                    )
                })
            })
            .transpose()?;
        Ok(ListQuery {
            resource,
            request: self,
            filter,
            select,
            top,
            count,
            after,
        })
    }

    /// Each option's text, by name: an option this verifier does not take, or one given twice,
    /// is refused.
    fn options(&self) -> Result<OptionTexts<'_>, QueryError> {
        let mut options = OptionTexts::default();
        for (key, value) in &self.pairs {
            // Graph v1.0 takes the options with or without their `$`.
            let name = key.strip_prefix('$').unwrap_or(key).to_ascii_lowercase();
            let slot = match name.as_str() {
                "filter" => &mut options.filter,
                "select" => &mut options.select,
                "top" => &mut options.top,
                "count" => &mut options.count,
                "skiptoken" => &mut options.token,
                other if UNSUPPORTED.contains(&other) => {
                    return Err(QueryError::unsupported(format!(
                        "The query option '${other}' is not supported by this verifier; it takes $select, $filter, $top, $count and $skiptoken."
                    )))
                }
                _ if key.starts_with('$') => {
                    return Err(QueryError::bad(format!(
                        "The query option '{key}' is not an OData option this verifier knows; it takes $select, $filter, $top, $count and $skiptoken."
                    )))
                }
                _ => {
                    return Err(QueryError::bad(format!(
                        "The query parameter '{key}' is not supported; filter with $filter (for example $filter={key} eq '...'), and use $select, $top, $count and $skiptoken."
                    )))
                }
            };
            if slot.replace(value.as_str()).is_some() {
                return Err(QueryError::bad(format!(
                    "The query option '${name}' is given more than once."
                )));
            }
        }
        Ok(options)
    }

    /// `$filter`: parsed, and checked against what the resource filters on. An operator Graph
    /// allows only in advanced queries needs `$count=true` and `ConsistencyLevel: eventual`.
    fn parse_filter(
        &self,
        text: &str,
        resource: &Resource,
        count: bool,
    ) -> Result<Expr, QueryError> {
        let expr = filter::parse(text)
            .map_err(|e| QueryError::bad(format!("Invalid filter clause: {e}.")))?;
        if let Some(op) = resource.filter.check(&expr)? {
            if !(self.eventual && count) {
                return Err(QueryError::unsupported(format!(
                    "Operator '{op}' needs the advanced query parameters: add $count=true and the header ConsistencyLevel: eventual (https://aka.ms/graph-docs/advanced-queries)."
                )));
            }
        }
        Ok(expr)
    }

    /// What a skiptoken is bound to: the collection and every option but the token.
    fn scope(&self, resource: &Resource) -> String {
        let mut pairs: Vec<String> = self
            .options_but_token()
            .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
            .collect();
        pairs.sort();
        format!("{}?{}", resource.entity_set, pairs.join("&"))
    }

    fn options_but_token(&self) -> impl Iterator<Item = &(String, String)> {
        self.pairs.iter().filter(|(k, _)| {
            !k.strip_prefix('$')
                .unwrap_or(k)
                .eq_ignore_ascii_case("skiptoken")
        })
    }
}

fn parse_select(text: &str, resource: &Resource) -> Result<Vec<String>, QueryError> {
    let mut chosen: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() || !(resource.selectable)(name) {
            return Err(QueryError::bad(format!(
                "Could not find a property named '{name}' on type '{}'.",
                resource.type_name
            )));
        }
        if !chosen.iter().any(|c| c == name) {
            chosen.push(name.to_owned());
        }
    }
    Ok(chosen)
}

/// Gathers one page from items fed in the collection's order.
#[derive(Debug)]
pub struct Collector<'q> {
    query: &'q ListQuery<'q>,
    page: Vec<(String, Value)>,
    more: bool,
    count: usize,
}

impl ListQuery<'_> {
    /// Where the page starts (the key after which items are wanted) when the feeder can seek
    /// there itself; `None` when it must feed from the start (to count the whole collection).
    pub fn seek(&self) -> Option<&str> {
        (!self.count).then_some(self.after.as_deref()).flatten()
    }

    pub fn collector(&self) -> Collector<'_> {
        Collector {
            query: self,
            page: Vec::new(),
            more: false,
            count: 0,
        }
    }

    /// The response for `items` held in memory, each with its unique sort key.
    pub fn respond_all(&self, mut items: Vec<(String, Value)>) -> Value {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if self.resource.descending {
            items.reverse();
        }
        let mut collector = self.collector();
        for (key, item) in items {
            if collector.push(key, item).is_break() {
                break;
            }
        }
        collector.finish()
    }
}

impl Collector<'_> {
    /// Takes the next item (in the collection's order); `Break` once the page is full and
    /// nothing more needs to be seen.
    pub fn push(&mut self, key: String, item: Value) -> ControlFlow<()> {
        let query = self.query;
        if let Some(filter) = &query.filter {
            if !eval::matches(filter, &item) {
                return ControlFlow::Continue(());
            }
        }
        self.count += 1;
        let past = query.after.as_deref().is_none_or(|after| {
            if query.resource.descending {
                key.as_str() < after
            } else {
                key.as_str() > after
            }
        });
        if !past {
            return ControlFlow::Continue(());
        }
        if self.page.len() < query.top {
            self.page.push((key, item));
        } else {
            self.more = true;
            if !query.count {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The collection response.
    pub fn finish(self) -> Value {
        let query = self.query;
        let request = query.request;
        let resource = query.resource;
        let mut context = format!("{}/v1.0/$metadata#{}", request.base, resource.entity_set);
        if let Some(select) = &query.select {
            context.push_str(&format!("({})", select.join(",")));
        }
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(context));
        if query.count {
            body.insert("@odata.count".into(), json!(self.count));
        }
        if self.more {
            if let Some((last, _)) = self.page.last() {
                let token = skiptoken::issue(&request.scope(resource), last);
                let mut link = format!("{}{}?", request.base, request.path);
                for (k, v) in request.options_but_token() {
                    link.push_str(&format!("{}={}&", encode(k), encode(v)));
                }
                link.push_str(&format!("$skiptoken={token}"));
                body.insert("@odata.nextLink".into(), json!(link));
            }
        }
        let value: Vec<Value> = self
            .page
            .into_iter()
            .map(|(_, item)| match &query.select {
                Some(select) => Value::Object(
                    select
                        .iter()
                        .map(|name| (name.clone(), item.get(name).cloned().unwrap_or(Value::Null)))
                        .collect(),
                ),
                None => item,
            })
            .collect();
        body.insert("value".into(), Value::Array(value));
        Value::Object(body)
    }
}

/// Percent-encoding for a query component: everything but RFC 3986's unreserved characters
/// (and `$`, which OData's option names keep readable).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'$' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_components() {
        assert_eq!(
            encode("userPrincipalName eq 'a+b@w.com'"),
            "userPrincipalName%20eq%20%27a%2Bb%40w.com%27"
        );
        assert_eq!(encode("$top"), "$top");
    }
}
