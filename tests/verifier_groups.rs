//! Groups through the admin API as Graph has them (request bodies from Graph's documentation in
//! `tests/data/graph/groups/`): a group created without an id is given one, members are added and
//! removed by `$ref`, duplicates and unknowns are refused as Graph refuses them, memberOf and
//! members list directoryObjects, and the next sign-in follows the membership under a policy that
//! targets the group.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

const POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/graph/groups")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Graph's add-member body naming `id` (the documentation's own `{id}` placeholder filled in).
fn member_ref(id: &str) -> Value {
    let mut body = example("add-member.json");
    body["@odata.id"] = json!(body["@odata.id"].as_str().unwrap().replace("{id}", id));
    body
}

#[test]
fn groups_and_memberships_follow_graph_and_decide_the_next_sign_in() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let call = |method: Method, path: &str, body: Option<Value>| v.as_admin(method, path, body);
    // Alice's sign-in, refused while she is in no group the policy targets.
    let alice_is_out_of_scope = || {
        let (code, answer) = v.sign_in(w, "alice-p384", "alice@woodgrove.com");
        assert_eq!(
            (code, &answer["errorCode"]),
            (3, &json!("AADSTS130501")),
            "{answer}"
        );
    };

    // Graph's create-group example has no id: the service assigns a GUID.
    let (status, group) = call(
        Method::POST,
        "/v1.0/groups",
        Some(example("create-group.json")),
    );
    assert_eq!(status, 201, "{group}");
    let id = group["id"].as_str().unwrap().to_owned();
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
    assert!(
        id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(group["displayName"], "Library Assist");
    let (status, again) = call(Method::GET, &format!("/v1.0/groups/{id}"), None);
    assert_eq!((status, &again), (200, &group));
    let (status, other) = call(
        Method::POST,
        "/v1.0/groups",
        Some(example("create-group.json")),
    );
    assert_eq!(status, 201, "{other}");
    assert_ne!(other["id"], group["id"]);

    // The method for this group only: Alice is not in it yet.
    let (status, body) = call(
        Method::PATCH,
        POLICY,
        Some(json!({
            "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
            "includeTargets": [{"targetType": "group", "id": id, "isRegistrationRequired": false}],
        })),
    );
    assert_eq!(status, 204, "{body}");
    alice_is_out_of_scope();

    let (_, alice) = call(Method::GET, "/v1.0/users/alice@woodgrove.com", None);
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    let members = format!("/v1.0/groups/{id}/members/$ref");
    let (status, body) = call(Method::POST, &members, Some(member_ref(&alice_id)));
    assert_eq!(status, 204, "{body}");
    let (code, answer) = v.sign_in(w, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "a member signs in: {answer}");

    // Twice: Graph's own refusal.
    let (status, body) = call(Method::POST, &members, Some(member_ref(&alice_id)));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert_eq!(
        body["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    // Unknown user or group.
    for (path, reference) in [
        (members.as_str(), member_ref("nobody")),
        (
            "/v1.0/groups/no-such-group/members/$ref",
            member_ref(&alice_id),
        ),
    ] {
        let (status, body) = call(Method::POST, path, Some(reference));
        assert_eq!(status, 404, "{body}");
    }
    // A body that is not a reference: the field at fault is named.
    for (reference, target) in [
        (
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/devices/{alice_id}")}),
            "@odata.id",
        ),
        (
            json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/bob@woodgrove.com", "extra": 1}),
            "extra",
        ),
    ] {
        let (status, body) = call(Method::POST, &members, Some(reference));
        assert_eq!(
            (status, &body["error"]["target"]),
            (400, &json!(target)),
            "{body}"
        );
    }
    // The `.../users/{id}` form is taken too.
    let (status, body) = call(
        Method::POST,
        &members,
        Some(json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/bob@woodgrove.com"})),
    );
    assert_eq!(status, 204, "{body}");

    // memberOf and members list directoryObjects.
    let (status, member_of) = call(
        Method::GET,
        &format!("/v1.0/users/{alice_id}/memberOf"),
        None,
    );
    assert_eq!(status, 200, "{member_of}");
    assert_eq!(
        member_of["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
    );
    let groups = member_of["value"].as_array().unwrap();
    assert!(
        groups.contains(&json!({"@odata.type": "#microsoft.graph.group", "id": id,
        "displayName": "Library Assist"})),
        "{member_of}"
    );
    assert!(groups.iter().any(|g| g["id"] == "cba-users"), "{member_of}");
    let (status, list) = call(Method::GET, &format!("/v1.0/groups/{id}/members"), None);
    assert_eq!(status, 200, "{list}");
    let upns: Vec<&Value> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["userPrincipalName"])
        .collect();
    assert_eq!(
        upns,
        [&json!("alice@woodgrove.com"), &json!("bob@woodgrove.com")],
        "{list}"
    );
    assert!(list["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["@odata.type"] == "#microsoft.graph.user"));
    assert_eq!(
        call(
            Method::GET,
            "/v1.0/users/nobody@woodgrove.com/memberOf",
            None
        )
        .0,
        404
    );
    assert_eq!(
        call(Method::GET, "/v1.0/groups/no-such-group/members", None).0,
        404
    );

    // Removed: the next sign-in is refused again; removing twice is a 404.
    let remove = format!("/v1.0/groups/{id}/members/{alice_id}/$ref");
    let (status, body) = call(Method::DELETE, &remove, None);
    assert_eq!(status, 204, "{body}");
    alice_is_out_of_scope();
    assert_eq!(call(Method::DELETE, &remove, None).0, 404);

    // Deleting the group takes its memberships with it; a second delete is a 404.
    let (status, body) = call(Method::DELETE, &format!("/v1.0/groups/{id}"), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        call(Method::GET, &format!("/v1.0/groups/{id}"), None).0,
        404
    );
    assert_eq!(
        call(Method::DELETE, &format!("/v1.0/groups/{id}"), None).0,
        404
    );
    let (_, bob) = call(Method::GET, "/v1.0/users/bob@woodgrove.com", None);
    assert!(
        !bob["memberOf"].as_array().unwrap().contains(&json!(id)),
        "{bob}"
    );

    // A reader may list, not change.
    let reader = v.api_key("reader");
    let (status, _) = v.admin(
        Method::POST,
        "/v1.0/groups/cba-users/members/$ref",
        Some(&reader),
        Some(member_ref(&alice_id)),
    );
    assert_eq!(status, 403);
    let (status, _) = v.admin(
        Method::GET,
        "/v1.0/groups/cba-users/members",
        Some(&reader),
        None,
    );
    assert_eq!(status, 200);
}
