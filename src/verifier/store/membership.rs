//! Groups one at a time and their members: reading a group, deleting it (and every membership in
//! it), adding and removing a member. Membership is held in each user's `memberOf`, and every
//! change is one transaction that reads and rewrites the rows it touches.

use rusqlite::{params, OptionalExtension, Transaction};

use super::tenant::USER_BY_ID_OR_UPN;
use super::{Store, StoreError};
use crate::verifier::directory::{Group, User};

/// What a membership change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    NoGroup,
    NoUser,
    /// Adding a member the group has.
    AlreadyMember,
    /// Removing a user who is not a member.
    NotMember,
}

impl Store {
    /// The group with this id.
    pub fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.with(|conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT json FROM groups WHERE id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()?;
            json.map(|json| Ok(serde_json::from_str(&json)?))
                .transpose()
        })
    }

    /// The users who are members of the group, by UPN; `None` if there is no such group.
    pub fn group_members(&self, id: &str) -> Result<Option<Vec<User>>, StoreError> {
        if self.group(id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            self.users()?
                .into_iter()
                .filter(|user| user.member_of.iter().any(|g| g == id))
                .collect(),
        ))
    }

    /// Deletes a group and every membership in it; `true` if there was such a group.
    pub fn delete_group(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            if tx.execute("DELETE FROM groups WHERE id = ?1", params![id])? == 0 {
                return Ok(false);
            }
            for (user_id, mut user) in users_in(tx)? {
                let before = user.member_of.len();
                user.member_of.retain(|g| g != id);
                if user.member_of.len() != before {
                    rewrite(tx, &user_id, &user)?;
                }
            }
            Ok(true)
        })
    }

    /// Makes the user (by id or UPN) a member of the group.
    pub fn add_member(&self, group: &str, user: &str) -> Result<MemberChange, StoreError> {
        self.change_membership(group, user, |member_of| {
            if member_of.iter().any(|g| g == group) {
                return MemberChange::AlreadyMember;
            }
            member_of.push(group.to_owned());
            MemberChange::Done
        })
    }

    /// Takes the user (by id or UPN) out of the group.
    pub fn remove_member(&self, group: &str, user: &str) -> Result<MemberChange, StoreError> {
        self.change_membership(group, user, |member_of| {
            let before = member_of.len();
            member_of.retain(|g| g != group);
            if member_of.len() == before {
                MemberChange::NotMember
            } else {
                MemberChange::Done
            }
        })
    }

    /// Reads the group and the user, lets `change` edit the user's `memberOf`, and writes it back
    /// when it says [`MemberChange::Done`], all in one transaction.
    fn change_membership(
        &self,
        group: &str,
        user: &str,
        change: impl FnOnce(&mut Vec<String>) -> MemberChange,
    ) -> Result<MemberChange, StoreError> {
        self.write(|tx| {
            let group_exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM groups WHERE id = ?1)",
                params![group],
                |row| row.get(0),
            )?;
            if !group_exists {
                return Ok(MemberChange::NoGroup);
            }
            let Some((id, json)) = tx
                .query_row(USER_BY_ID_OR_UPN, params![user], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .optional()?
            else {
                return Ok(MemberChange::NoUser);
            };
            let mut current: User =
                serde_json::from_str(&json).map_err(|e| StoreError::Rejected {
                    field: "id".into(),
                    message: format!(
                    "the stored user `{id}` cannot be read ({e}); delete it and create it again"
                ),
                })?;
            let outcome = change(&mut current.member_of);
            if outcome == MemberChange::Done {
                rewrite(tx, &id, &current)?;
            }
            Ok(outcome)
        })
    }
}

/// Every user row that reads, with its id.
fn users_in(tx: &Transaction<'_>) -> Result<Vec<(String, User)>, StoreError> {
    let mut statement = tx.prepare("SELECT id, json FROM users")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut users = Vec::new();
    for row in rows {
        let (id, json) = row?;
        if let Ok(user) = serde_json::from_str(&json) {
            users.push((id, user));
        }
    }
    Ok(users)
}

/// A user's JSON rewritten in place: only `memberOf` changed, which no index holds.
fn rewrite(tx: &Transaction<'_>, id: &str, user: &User) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE users SET json = ?2 WHERE id = ?1",
        params![id, serde_json::to_string(user)?],
    )?;
    Ok(())
}
