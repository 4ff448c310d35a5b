//! Console users: names, roles and argon2id password hashes.
//!
//! What each [`Role`] may do is the console's business; the store keeps who has which role, checks
//! passwords, and audits every change to an account (never a password or its hash). One guard lives
//! here because it protects the data itself: the last enabled admin cannot be disabled or demoted,
//! so the console can never lock everybody out.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::secret::{dummy_password_check, hash_password, password_matches};
use crate::{append_audit, corrupt, record, validate, Result, Store, StoreError};

/// What a user may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, API tokens and the allowlist.
    Admin,
    /// Records orders and their rules (the proposer).
    Legal,
    /// Approves or revokes orders proposed by someone else (the second pair of eyes).
    Approver,
    /// Runs enforcement: publishes bundles, watches the engines and mitigations.
    Operator,
    /// Reads everything, including the audit log, and verifies it.
    Auditor,
    /// Reads the policy and the dashboards.
    Viewer,
}

impl Role {
    /// Every role, from the most to the least powerful.
    pub const ALL: [Role; 6] = [Role::Admin, Role::Legal, Role::Approver, Role::Operator, Role::Auditor, Role::Viewer];

    /// The lower-case name used in the database, the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Legal => "legal",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| StoreError::Invalid {
            field: "role",
            reason: format!("unknown role {s:?}; expected one of {}", Role::ALL.map(Role::as_str).join(", ")),
        })
    }
}

/// Identifier of a user in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A console user. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Store identifier.
    pub id: UserId,
    /// Login name: 1 to 64 of `a-z 0-9 . _ -`; also the actor name in the audit log.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// A disabled user cannot log in, and its sessions and API tokens no longer work.
    pub disabled: bool,
    /// When the account was created (Unix seconds).
    pub created_at: i64,
}

/// Columns for [`user_from_row`], in its order.
pub(crate) const USER_COLUMNS: &str = "u.id, u.name, u.role, u.disabled, u.created_at";

/// Reads a [`User`] from the first five columns of `r` ([`USER_COLUMNS`]).
pub(crate) fn user_from_row(r: &Row<'_>) -> Result<User> {
    let id: i64 = r.get(0)?;
    let role: String = r.get(2)?;
    Ok(User {
        id: UserId(id),
        name: r.get(1)?,
        role: role.parse().map_err(|e| corrupt("users", id, e))?,
        disabled: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn user_object(name: &str) -> String {
    format!("user:{name}")
}

/// The user and its password hash, if the name exists.
fn user_with_hash(conn: &Connection, name: &str) -> Result<Option<(User, String)>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = ?1"))?;
    let mut rows = stmt.query([name])?;
    match rows.next()? {
        Some(row) => Ok(Some((user_from_row(row)?, row.get(5)?))),
        None => Ok(None),
    }
}

/// The user with this name, or [`StoreError::UnknownName`].
pub(crate) fn load_user(conn: &Connection, name: &str) -> Result<User> {
    Ok(user_with_hash(conn, name)?.ok_or_else(|| StoreError::UnknownName { what: "user", name: name.into() })?.0)
}

/// Refuses a change that would leave no enabled admin.
fn keep_an_admin(tx: &Transaction<'_>, user: &User, field: &'static str) -> Result<()> {
    if user.role != Role::Admin || user.disabled {
        return Ok(());
    }
    let others: i64 = tx.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
        [user.id.0],
        |r| r.get(0),
    )?;
    if others == 0 {
        return Err(StoreError::Invalid {
            field,
            reason: format!("{} is the last enabled admin; make another user admin first", user.name),
        });
    }
    Ok(())
}

impl Store {
    /// Creates a user. The name must be 1 to 64 of `a-z 0-9 . _ -` and unused; the password at
    /// least 12 characters. Only an argon2id hash of the password is stored, and the audit entry
    /// (`user.create`) records neither.
    pub fn create_user(&mut self, actor: &str, name: &str, role: Role, password: &str, now: i64) -> Result<User> {
        validate::user_name(name)?;
        validate::password(password)?;
        let tx = self.conn.transaction()?;
        if user_with_hash(&tx, name)?.is_some() {
            return Err(StoreError::Duplicate {
                selector: name.into(),
                place: "taken: user names are unique (a disabled user keeps its name)".into(),
            });
        }
        let hash = hash_password(password)?;
        tx.execute(
            "INSERT INTO users (name, role, password_hash, disabled, created_by, created_at) \
             VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            params![name, role.as_str(), hash, actor, now],
        )?;
        let user =
            User { id: UserId(tx.last_insert_rowid()), name: name.into(), role, disabled: false, created_at: now };
        append_audit(&tx, now, record(actor, "user.create", &user_object(name), None, Some(&user), None))?;
        tx.commit()?;
        Ok(user)
    }

    /// Replaces a user's password (audited as `user.password`, without the password). The user's
    /// console sessions end, so whoever knew the old password is logged out; API tokens stay.
    pub fn set_password(&mut self, actor: &str, name: &str, password: &str, now: i64) -> Result<()> {
        validate::password(password)?;
        let tx = self.conn.transaction()?;
        let user = load_user(&tx, name)?;
        let hash = hash_password(password)?;
        tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, user.id.0])?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user.id.0])?;
        append_audit(&tx, now, record::<User>(actor, "user.password", &user_object(name), None, None, None))?;
        tx.commit()?;
        Ok(())
    }

    /// Gives a user another role (audited as `user.role` with before and after). The last enabled
    /// admin keeps its role.
    pub fn set_role(&mut self, actor: &str, name: &str, role: Role, now: i64) -> Result<User> {
        let tx = self.conn.transaction()?;
        let before = load_user(&tx, name)?;
        if before.role == role {
            return Ok(before);
        }
        keep_an_admin(&tx, &before, "role")?;
        tx.execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.as_str(), before.id.0])?;
        let after = User { role, ..before.clone() };
        append_audit(&tx, now, record(actor, "user.role", &user_object(name), Some(&before), Some(&after), None))?;
        tx.commit()?;
        Ok(after)
    }

    /// Disables a user: it can no longer log in, its sessions are deleted and its API tokens
    /// revoked, in the same transaction (audited as `user.disable`). The name stays taken, so the
    /// audit log's actor names stay unambiguous. The last enabled admin cannot be disabled.
    pub fn disable_user(&mut self, actor: &str, name: &str, now: i64) -> Result<User> {
        let tx = self.conn.transaction()?;
        let before = load_user(&tx, name)?;
        if before.disabled {
            return Err(StoreError::Invalid { field: "name", reason: format!("user {name} is already disabled") });
        }
        keep_an_admin(&tx, &before, "name")?;
        tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [before.id.0])?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [before.id.0])?;
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            params![now, before.id.0],
        )?;
        let after = User { disabled: true, ..before.clone() };
        append_audit(&tx, now, record(actor, "user.disable", &user_object(name), Some(&before), Some(&after), None))?;
        tx.commit()?;
        Ok(after)
    }

    /// Enables a disabled user again (audited as `user.enable`). Its old API tokens stay revoked.
    pub fn enable_user(&mut self, actor: &str, name: &str, now: i64) -> Result<User> {
        let tx = self.conn.transaction()?;
        let before = load_user(&tx, name)?;
        if !before.disabled {
            return Err(StoreError::Invalid { field: "name", reason: format!("user {name} is not disabled") });
        }
        tx.execute("UPDATE users SET disabled = 0 WHERE id = ?1", [before.id.0])?;
        let after = User { disabled: false, ..before.clone() };
        append_audit(&tx, now, record(actor, "user.enable", &user_object(name), Some(&before), Some(&after), None))?;
        tx.commit()?;
        Ok(after)
    }

    /// The user with this name, enabled or not.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(user_with_hash(&self.conn, name)?.map(|(user, _)| user))
    }

    /// All users, in id order.
    pub fn users(&self) -> Result<Vec<User>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(user_from_row(row)?);
        }
        Ok(out)
    }

    /// Number of users, disabled ones included (zero means the console needs its first admin).
    pub fn user_count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Checks a login. None for an unknown name, a wrong password or a disabled user, with the
    /// same work in each case (an unknown name is checked against a dummy hash), so neither the
    /// answer nor its timing tells which names exist.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        self.login_check(name)?.verify(password)
    }

    /// The first half of [`Store::verify_password`]: reads what checking `name`'s password
    /// needs. The slow half, [`LoginCheck::verify`], needs no store, so a server can run it
    /// without holding its store.
    pub fn login_check(&self, name: &str) -> Result<LoginCheck> {
        Ok(LoginCheck(user_with_hash(&self.conn, name)?))
    }
}

/// A stored password hash, read by [`Store::login_check`], to check a password against.
#[derive(Debug)]
pub struct LoginCheck(Option<(User, String)>);

impl LoginCheck {
    /// The user if `password` is theirs and they are enabled; the same work (argon2id) when the
    /// name is unknown, so neither answer nor timing tells which names exist.
    pub fn verify(self, password: &str) -> Result<Option<User>> {
        let Some((user, hash)) = self.0 else {
            dummy_password_check(password);
            return Ok(None);
        };
        let matches = password_matches(password, &hash).map_err(|e| corrupt("users", user.id.0, e))?;
        Ok((matches && !user.disabled).then_some(user))
    }
}
