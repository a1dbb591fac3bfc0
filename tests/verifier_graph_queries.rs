//! Graph's list shapes and OData query options against a real verifier: `@odata.context` and
//! `value`, `$top` paging through `@odata.nextLink` (no duplicates, no omissions, a garbled
//! `$skiptoken` refused), `$select`, `$filter` (eq, startswith, in, and/or, parentheses, the
//! certificateUserIds `any` lambda behind Graph's advanced query parameters), `$count`, every
//! unsupported option a 400 naming it; and the sign-in log as Graph's `signIn` resource after real
//! sign-ins. Graph's own example responses are in `tests/data/graph/queries/`.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use support::verifier::Verifier;
use support::woodgrove::woodgrove;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";
const SKI_ID: &str = "X509:<SKI>A1B2C3D4E5F60718293A4B5C6D7E8F9012345678";

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/graph/queries")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// A GET of `path` (or of an absolute nextLink), with `ConsistencyLevel: eventual` when asked.
fn get_with(v: &Verifier, key: &str, path: &str, eventual: bool) -> (u16, Value) {
    let url = if path.starts_with("https://") {
        path.to_owned()
    } else {
        format!("{}{path}", v.admin_url)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut request = v.admin_client().get(url).bearer_auth(key);
        if eventual {
            request = request.header("ConsistencyLevel", "eventual");
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn get(v: &Verifier, key: &str, path: &str) -> Value {
    let (status, body) = get_with(v, key, path, false);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The UPNs of a list answer.
fn upns(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_owned())
        .collect()
}

/// A 400 whose message names each of `words`.
fn refused(answer: (u16, Value), words: &[&str]) -> Value {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "`{word}` not in: {message}");
    }
    body
}

fn rfc3339(text: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(text.as_str().unwrap(), &Rfc3339)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
}

#[test]
fn user_lists_page_select_and_filter_as_graph_does() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    for user in [
        json!({"userPrincipalName": "oneil@woodgrove.com", "displayName": "O'Neil",
               "onPremisesUserPrincipalName": "oneil@corp.woodgrove.local"}),
        json!({"userPrincipalName": "dave@woodgrove.com", "displayName": "Dave"}),
        json!({"userPrincipalName": "erin@woodgrove.com", "displayName": "Erin",
               "authorizationInfo": {"certificateUserIds": [SKI_ID]}}),
        json!({"userPrincipalName": "anna@woodgrove.com", "displayName": "Anna"}),
    ] {
        let (status, body) = v.admin(Method::POST, "/v1.0/users", Some(&key), Some(user));
        assert_eq!(status, 201, "{body}");
    }

    // The whole list: Graph's collection shape, the context on the verifier's own base.
    let all = get(&v, &key, "/v1.0/users");
    let graph = example("list-users-response.json");
    let context = all["@odata.context"].as_str().unwrap();
    let graph_context = graph["@odata.context"].as_str().unwrap();
    assert_eq!(context, format!("{}/v1.0/$metadata#users", v.admin_url));
    assert!(graph_context.ends_with("/v1.0/$metadata#users"));
    assert!(all.get("@odata.nextLink").is_none(), "{all}");
    let everyone = upns(&all);
    assert!(everyone.len() >= 6, "{all}");
    // The properties of Graph's example user the verifier keeps come in the same JSON kinds.
    let (theirs, ours) = (&graph["value"][0], &all["value"][0]);
    for name in ["userPrincipalName", "displayName"] {
        assert!(
            theirs[name].is_string() && ours[name].is_string(),
            "{name}: {ours}"
        );
    }

    // $top=2: pages of two, linked until the end, each user once.
    let mut seen = Vec::new();
    let mut link = "/v1.0/users?$top=2".to_owned();
    let mut pages = 0;
    let mut second_link = None;
    loop {
        let page = get(&v, &key, &link);
        pages += 1;
        let got = upns(&page);
        assert!(got.len() <= 2 && !got.is_empty(), "{page}");
        seen.extend(got);
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&v.admin_url), "{next}");
                assert!(
                    next.contains("$top=2") && next.contains("$skiptoken="),
                    "{next}"
                );
                if pages == 1 {
                    second_link = Some(next.to_owned());
                }
                link = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, everyone.len().div_ceil(2));
    assert_eq!(
        seen, everyone,
        "paging gives each user once, in the list's order"
    );

    // A skiptoken that was altered, made up, or moved to another query is refused.
    let second = second_link.unwrap();
    let (base, token) = second.split_once("$skiptoken=").unwrap();
    let mut flipped = token.to_owned().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let garbled = format!("{base}$skiptoken={}", String::from_utf8(flipped).unwrap());
    refused(get_with(&v, &key, &garbled, false), &["$skiptoken"]);
    refused(
        get_with(&v, &key, "/v1.0/users?$top=2&$skiptoken=MTAw", false),
        &["$skiptoken"],
    );
    refused(
        get_with(
            &v,
            &key,
            &format!("/v1.0/users?$top=3&$skiptoken={token}"),
            false,
        ),
        &["$skiptoken"],
    );

    // $select: only those properties; Graph's declared but unmodelled ones are null; unknown: 400.
    let selected = get(&v, &key, "/v1.0/users?$select=id,userPrincipalName");
    assert!(selected["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#users(id,userPrincipalName)"));
    for user in selected["value"].as_array().unwrap() {
        let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "userPrincipalName"], "{user}");
    }
    let mail = get(&v, &key, "/v1.0/users?$select=mail");
    assert_eq!(mail["value"][0], json!({"mail": null}));
    refused(
        get_with(&v, &key, "/v1.0/users?$select=nope", false),
        &["Could not find a property named 'nope' on type 'microsoft.graph.user'."],
    );

    // $filter.
    let filtered = |filter: &str| {
        let body = get(&v, &key, &format!("/v1.0/users?$filter={filter}"));
        let mut got = upns(&body);
        got.sort();
        got
    };
    assert_eq!(
        filtered("userPrincipalName eq 'alice@woodgrove.com'"),
        ["alice@woodgrove.com"]
    );
    assert_eq!(
        filtered("userPrincipalName eq 'ALICE@woodgrove.com'"),
        ["alice@woodgrove.com"],
        "UPNs compare case-insensitively"
    );
    assert_eq!(
        filtered("startswith(userPrincipalName,'a')"),
        ["alice@woodgrove.com", "anna@woodgrove.com"]
    );
    let id_of = |upn: &str| {
        all["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["userPrincipalName"] == upn)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        filtered(&format!(
            "id in ('{}', '{}', 'nobody')",
            id_of("alice@woodgrove.com"),
            id_of("carol@woodgrove.com")
        )),
        ["alice@woodgrove.com", "carol@woodgrove.com"]
    );
    assert_eq!(
        filtered("startswith(userPrincipalName,'a') or userPrincipalName eq 'dave@woodgrove.com'"),
        [
            "alice@woodgrove.com",
            "anna@woodgrove.com",
            "dave@woodgrove.com"
        ]
    );
    assert_eq!(
        filtered("(startswith(userPrincipalName,'a') or startswith(userPrincipalName,'d')) and displayName eq 'Anna'"),
        ["anna@woodgrove.com"]
    );
    assert_eq!(
        filtered("displayName eq 'O''Neil'"),
        ["oneil@woodgrove.com"]
    );
    assert_eq!(
        filtered("onPremisesUserPrincipalName eq 'oneil@corp.woodgrove.local'"),
        ["oneil@woodgrove.com"]
    );
    // Paging keeps the filter.
    let first = get(
        &v,
        &key,
        "/v1.0/users?$filter=startswith(userPrincipalName,'a')&$top=1",
    );
    assert_eq!(upns(&first), ["alice@woodgrove.com"]);
    let rest = get(&v, &key, first["@odata.nextLink"].as_str().unwrap());
    assert_eq!(upns(&rest), ["anna@woodgrove.com"]);
    assert!(rest.get("@odata.nextLink").is_none(), "{rest}");

    // certificateUserIds: Graph's lambda, only with the advanced query parameters.
    let lambda = format!("authorizationInfo/certificateUserIds/any(x:x eq '{SKI_ID}')");
    let body = refused(
        get_with(
            &v,
            &key,
            &format!("/v1.0/users?$filter={lambda}&$count=true"),
            false,
        ),
        &["'any'", "ConsistencyLevel: eventual", "$count=true"],
    );
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    refused(
        get_with(&v, &key, &format!("/v1.0/users?$filter={lambda}"), true),
        &["'any'", "$count=true"],
    );
    let (status, found) = get_with(
        &v,
        &key,
        &format!("/v1.0/users?$filter={lambda}&$count=true"),
        true,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(upns(&found), ["erin@woodgrove.com"]);
    assert_eq!(found["@odata.count"], 1);
    let (status, found) = get_with(
        &v,
        &key,
        "/v1.0/users?$filter=authorizationInfo/certificateUserIds/any(x:startswith(x,'X509:<SKI>a1b2'))&$count=true&$select=userPrincipalName",
        true,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["value"],
        json!([{"userPrincipalName": "erin@woodgrove.com"}])
    );

    // $count: with the header, the whole collection's count, whatever the page size.
    let (status, counted) = get_with(&v, &key, "/v1.0/users?$count=true&$top=1", true);
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["@odata.count"], everyone.len());
    assert_eq!(counted["value"].as_array().unwrap().len(), 1);
    let (status, counted) = get_with(&v, &key, counted["@odata.nextLink"].as_str().unwrap(), true);
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["@odata.count"], everyone.len());
    assert_eq!(counted["value"][0]["userPrincipalName"], everyone[1]);
    refused(
        get_with(&v, &key, "/v1.0/users?$count=true", false),
        &["ConsistencyLevel: eventual"],
    );

    // What the verifier does not support is a 400 naming it, never ignored.
    for (query, names) in [
        ("$expand=memberOf", "'$expand'"),
        ("$orderby=displayName", "'$orderby'"),
        ("$search=\"displayName:a\"", "'$search'"),
        ("$foo=1", "'$foo'"),
        (
            "userPrincipalName=alice@woodgrove.com",
            "'userPrincipalName'",
        ),
        ("$top=0", "'0'"),
        ("$top=1000", "'1000'"),
        ("$top=2&top=3", "'$top'"),
        ("$count=yes", "'yes'"),
    ] {
        refused(
            get_with(&v, &key, &format!("/v1.0/users?{query}"), true),
            &[names],
        );
    }
    for (filter, words) in [
        (
            "displayName gt 'a'",
            "Unsupported or invalid query filter clause specified for property 'displayName' of resource 'User'.",
        ),
        (
            "mail eq 'a@woodgrove.com'",
            "Unsupported or invalid query filter clause specified for property 'mail' of resource 'User'.",
        ),
        ("endswith(userPrincipalName,'.com')", "'endswith'"),
        ("userPrincipalName eq", "Invalid filter clause"),
        ("userPrincipalName eq 'open", "Invalid filter clause"),
    ] {
        refused(
            get_with(&v, &key, &format!("/v1.0/users?$filter={filter}&$count=true"), true),
            &[words],
        );
    }
    refused(
        get_with(&v, &key, "/v1.0/users?$filter=displayName ne 'Dave'", false),
        &["'ne'", "ConsistencyLevel: eventual"],
    );
    let (status, not_dave) = get_with(
        &v,
        &key,
        "/v1.0/users?$filter=displayName ne 'Dave'&$count=true",
        true,
    );
    assert_eq!(status, 200, "{not_dave}");
    assert!(!upns(&not_dave).contains(&"dave@woodgrove.com".to_owned()));
    assert_eq!(not_dave["@odata.count"], everyone.len() - 1);

    // Groups and CAs are Graph collections too.
    let groups = get(&v, &key, "/v1.0/groups?$top=1");
    assert!(groups["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#groups"));
    refused(
        get_with(&v, &key, "/v1.0/groups?$select=nope", false),
        &["'microsoft.graph.group'"],
    );
    let cas = get(&v, &key, CAS);
    assert!(cas["@odata.context"]
        .as_str()
        .unwrap()
        .contains("/v1.0/$metadata#directory/publicKeyInfrastructure/"));
    let some_ca = cas["value"][0]["id"].as_str().unwrap();
    let one = get(
        &v,
        &key,
        &format!("{CAS}?$filter=id eq '{some_ca}'&$select=id"),
    );
    assert_eq!(one["value"], json!([{"id": some_ca}]));
    refused(
        get_with(&v, &key, &format!("{CAS}?$expand=x"), false),
        &["'$expand'"],
    );
}

#[test]
fn the_sign_in_log_is_graphs_sign_in_resource() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let (code, answer) = v.sign_in(w, "alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor");
    let (code, answer) = v.sign_in(w, "bob-revoked", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS500171");

    let log = get(&v, &key, "/v1.0/auditLogs/signIns");
    let graph = example("list-signins-response.json");
    assert_eq!(
        log["@odata.context"],
        format!("{}/v1.0/$metadata#auditLogs/signIns", v.admin_url)
    );
    assert!(graph["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#auditLogs/signIns"));
    let records = log["value"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{log}");
    // Newest first: bob's failure, then alice's success.
    let (failed, succeeded) = (&records[0], &records[1]);

    // Every property of Graph's example is there, with the same JSON kinds.
    let theirs = &graph["value"][0];
    for ours in records {
        for (name, value) in theirs.as_object().unwrap() {
            assert!(ours.get(name).is_some(), "{name} missing: {ours}");
            if !value.is_null() && name != "status" {
                assert_eq!(
                    std::mem::discriminant(value),
                    std::mem::discriminant(&ours[name]),
                    "{name}: {ours}"
                );
            }
        }
        for name in theirs["status"].as_object().unwrap().keys() {
            assert!(ours["status"].get(name).is_some(), "status.{name}: {ours}");
        }
        for name in theirs["authenticationDetails"][0]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(
                ours["authenticationDetails"][0].get(name).is_some(),
                "authenticationDetails.{name}: {ours}"
            );
        }
        let at = rfc3339(&ours["createdDateTime"]);
        assert!(at >= before && at <= OffsetDateTime::now_utc(), "{ours}");
        rfc3339(&ours["authenticationDetails"][0]["authenticationStepDateTime"]);
        assert_eq!(
            ours["authenticationDetails"][0]["authenticationMethod"],
            "X.509 Certificate"
        );
        assert_eq!(ours["ipAddress"], "127.0.0.1");
    }

    assert_eq!(succeeded["userPrincipalName"], "alice@woodgrove.com");
    assert_eq!(succeeded["status"]["errorCode"], 0);
    assert_eq!(
        succeeded["authenticationRequirement"],
        "multiFactorAuthentication"
    );
    assert_eq!(succeeded["authenticationDetails"][0]["succeeded"], true);
    assert_eq!(
        succeeded["authenticationDetails"][0]["authenticationStepResultDetail"],
        "methodSucceeded"
    );
    // The CBA facts stay, under the names the log has always used.
    assert_eq!(succeeded["authenticationStrength"], "multiFactor");
    assert_eq!(
        succeeded["usernameBinding"]["x509CertificateField"],
        "PrincipalName"
    );
    assert!(
        succeeded["certificate"]["serialNumber"].is_string(),
        "{succeeded}"
    );

    assert_eq!(failed["userPrincipalName"], "bob@woodgrove.com");
    assert_eq!(failed["status"]["errorCode"], json!(500171));
    assert!(failed["status"]["errorCode"].is_i64());
    assert_eq!(failed["status"]["additionalDetails"], "AADSTS500171");
    assert!(failed["status"]["failureReason"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    assert_eq!(failed["authenticationDetails"][0]["succeeded"], false);
    assert_eq!(
        failed["authenticationRequirement"],
        "singleFactorAuthentication"
    );

    // $filter, $select, $top and $count on the log.
    let ids = |body: &Value| -> Vec<Value> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect()
    };
    let bob = get(
        &v,
        &key,
        "/v1.0/auditLogs/signIns?$filter=userPrincipalName eq 'bob@woodgrove.com'",
    );
    assert_eq!(ids(&bob), [failed["id"].clone()]);
    let ok = get(
        &v,
        &key,
        "/v1.0/auditLogs/signIns?$filter=status/errorCode eq 0",
    );
    assert_eq!(ids(&ok), [succeeded["id"].clone()]);
    let since = before.format(&Rfc3339).unwrap();
    let recent = get(
        &v,
        &key,
        &format!(
            "/v1.0/auditLogs/signIns?$filter=createdDateTime ge {since} and status/errorCode ne 0"
        ),
    );
    assert_eq!(ids(&recent), [failed["id"].clone()]);
    let future = get(
        &v,
        &key,
        "/v1.0/auditLogs/signIns?$filter=createdDateTime ge 2999-01-01",
    );
    assert_eq!(future["value"], json!([]));
    let (status, counted) = get_with(
        &v,
        &key,
        "/v1.0/auditLogs/signIns?$top=1&$count=true&$select=id,status",
        false,
    );
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["@odata.count"], 2);
    assert_eq!(
        counted["value"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id", "status"]
    );
    let next = get(&v, &key, counted["@odata.nextLink"].as_str().unwrap());
    assert_eq!(ids(&next), [succeeded["id"].clone()]);
    assert!(next.get("@odata.nextLink").is_none(), "{next}");
    let all_ids: BTreeSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all_ids.len(), 2);
    refused(
        get_with(
            &v,
            &key,
            "/v1.0/auditLogs/signIns?$filter=status eq 'failure'",
            false,
        ),
        &["property 'status' of resource 'signIn'"],
    );
    refused(
        get_with(&v, &key, "/v1.0/auditLogs/signIns?status=failure", false),
        &["'status'"],
    );
    refused(
        get_with(&v, &key, "/v1.0/auditLogs/signIns?$top=1001", false),
        &["'1001'"],
    );
}
