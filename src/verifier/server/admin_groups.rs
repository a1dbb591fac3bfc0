//! The admin API's groups one at a time and their memberships, as Graph has them: `POST /groups`
//! assigns an id when the body has none, `GET`/`DELETE /groups/{id}`, members added with
//! `POST /groups/{id}/members/$ref` and removed with `DELETE /groups/{id}/members/{userId}/$ref`,
//! and the lists `GET /groups/{id}/members` and `GET /users/{id}/memberOf`. Every change is one
//! store transaction and is in force for the next sign-in.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::admin::{json_object, Caller, GraphError};
use super::App;
use crate::verifier::directory::{Group, User, GROUP_ODATA_TYPE, USER_ODATA_TYPE};
use crate::verifier::graph_schema;
use crate::verifier::stamps::random_guid;
use crate::verifier::store::{MemberChange, Role};

/// The `@odata.context` of a list of directoryObjects.
const DIRECTORY_OBJECTS_CONTEXT: &str =
    "https://graph.microsoft.com/v1.0/$metadata#directoryObjects";

/// Graph's answer to adding a member twice.
const ALREADY_MEMBER: &str = "One or more added object references already exist for the following modified properties: 'members'.";

/// `POST /v1.0/groups`: without an `id`, the group is given a new one, as Graph does.
pub async fn create_group(
    caller: Caller,
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Group>), GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let mut body = json_object(&body)?;
    graph_schema::check_object(&body, &graph_schema::GROUP).map_err(GraphError::invalid)?;
    if body.get("id").is_none_or(Value::is_null) {
        body.insert("id".into(), json!(random_guid()));
    }
    let group: Group = serde_json::from_value(Value::Object(body))
        .map_err(|e| GraphError::bad_request(e.to_string(), None))?;
    group.validate().map_err(GraphError::invalid)?;
    app.store.create_group(&group)?;
    app.refresh().map_err(GraphError::internal)?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub async fn get_group(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Group>, GraphError> {
    caller.require(Role::Reader)?;
    app.store
        .group(&id)?
        .map(Json)
        .ok_or_else(|| GraphError::not_found("the group"))
}

/// Deletes the group and every membership in it.
pub async fn delete_group(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    if !app.store.delete_group(&id)? {
        return Err(GraphError::not_found("the group"));
    }
    app.refresh().map_err(GraphError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/groups/{id}/members/$ref` with `{"@odata.id": ".../directoryObjects/{userId}"}`.
pub async fn add_member(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let body = json_object(&body)?;
    let user = referenced_user(&body)?;
    let change = app.store.add_member(&group, &user)?;
    membership_answer(&app, change)
}

/// `DELETE /v1.0/groups/{id}/members/{userId}/$ref`.
pub async fn remove_member(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    caller.require(Role::AuthenticationPolicyAdministrator)?;
    let change = app.store.remove_member(&group, &user)?;
    membership_answer(&app, change)
}

/// `GET /v1.0/groups/{id}/members`: the members as directoryObjects.
pub async fn list_members(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let members = app
        .store
        .group_members(&group)?
        .ok_or_else(|| GraphError::not_found("the group"))?;
    let value: Vec<Value> = members.iter().map(user_object).collect();
    Ok(Json(
        json!({"@odata.context": DIRECTORY_OBJECTS_CONTEXT, "value": value}),
    ))
}

/// `GET /v1.0/users/{id}/memberOf`: the user's groups as directoryObjects.
pub async fn member_of(
    caller: Caller,
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(Role::Reader)?;
    let user = app
        .store
        .user(&user)?
        .ok_or_else(|| GraphError::not_found("the user"))?;
    let value: Vec<Value> = app
        .store
        .groups()?
        .into_iter()
        .filter(|group| user.member_of.contains(&group.id))
        .map(|group| {
            json!({"@odata.type": GROUP_ODATA_TYPE, "id": group.id,
                "displayName": group.display_name})
        })
        .collect();
    Ok(Json(
        json!({"@odata.context": DIRECTORY_OBJECTS_CONTEXT, "value": value}),
    ))
}

/// A user as an entry of a directoryObjects list.
fn user_object(user: &User) -> Value {
    json!({"@odata.type": USER_ODATA_TYPE, "id": user.id,
        "displayName": user.display_name, "userPrincipalName": user.user_principal_name})
}

/// A membership change as Graph answers it: 204, 404 for an unknown group or user (or one who
/// is not a member), 400 for a member added twice.
fn membership_answer(app: &App, change: MemberChange) -> Result<StatusCode, GraphError> {
    match change {
        MemberChange::Done => {
            app.refresh().map_err(GraphError::internal)?;
            Ok(StatusCode::NO_CONTENT)
        }
        MemberChange::NoGroup => Err(GraphError::not_found("the group")),
        MemberChange::NoUser => Err(GraphError::not_found("the user")),
        MemberChange::NotMember => Err(GraphError::not_found("the user's membership in the group")),
        MemberChange::AlreadyMember => Err(GraphError::bad_request_coded(
            "Request_BadRequest",
            ALREADY_MEMBER,
        )),
    }
}

/// The user a `$ref` body names: `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`
/// (or `.../users/{id}`), and nothing else.
fn referenced_user(body: &serde_json::Map<String, Value>) -> Result<String, GraphError> {
    if let Some(other) = body.keys().find(|key| *key != "@odata.id") {
        return Err(GraphError::bad_request(
            format!("Property '{other}' does not exist on a reference; the body is {{\"@odata.id\": \"https://graph.microsoft.com/v1.0/directoryObjects/{{id}}\"}}."),
            Some(other.clone()),
        ));
    }
    let reference = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphError::bad_request(
                "the body must name the member: {\"@odata.id\": \"https://graph.microsoft.com/v1.0/directoryObjects/{id}\"}",
                Some("@odata.id".into()),
            )
        })?;
    let mut segments = reference.trim_end_matches('/').rsplit('/');
    match (segments.next(), segments.next()) {
        (Some(id), Some("directoryObjects" | "users")) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(GraphError::bad_request(
            format!("`{reference}` is not a reference to a user: use https://graph.microsoft.com/v1.0/directoryObjects/{{id}} or .../users/{{id}}"),
            Some("@odata.id".into()),
        )),
    }
}
