//! Console sessions (cookie login) and API tokens (automation).
//!
//! Both are bearer secrets made of operating-system randomness and shown to their holder once; the
//! database keeps only their SHA-256, so a copy of the file lets nobody in. Each request checks
//! the user too: disabling a user stops its sessions and tokens at once.

use std::fmt;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::accounts::{load_user, user_from_row, User, UserId, USER_COLUMNS};
use crate::secret::{random_bytes, token_digest};
use crate::validate::{self, Lines};
use crate::{append_audit, record, Result, Store, StoreError};

/// Every API token starts with this, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "bwb_";

/// `last_used_at` of a token is written at most this often (seconds), so a busy script does not
/// turn every request into a database write.
const LAST_USED_EVERY: i64 = 60;

/// A logged-in console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Who, as of this request (role changes apply at once).
    pub user: User,
    /// The anti-CSRF token for this session's forms (random, hex).
    pub csrf: String,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

/// Identifier of an API token in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub i64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An API token as listed: everything but the secret, which only its creator ever saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Store identifier.
    pub id: TokenId,
    /// The user the token acts as.
    pub user: String,
    /// What it is for ("nightly import from the court registry").
    pub label: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last used, to the minute; None if never.
    pub last_used_at: Option<i64>,
    /// When it was revoked (by hand, or by disabling its user); None while it works.
    pub revoked_at: Option<i64>,
}

fn token_object(id: TokenId) -> String {
    format!("token:{id}")
}

impl Store {
    /// Logs a user in: returns the session secret for the cookie (32 random bytes, hex) and the
    /// session, which ends `ttl_secs` after `now`. Only SHA-256 of the secret is stored. Audited as
    /// `user.login`; expired sessions are purged in passing.
    pub fn create_session(&mut self, user: UserId, now: i64, ttl_secs: i64) -> Result<(String, Session)> {
        if ttl_secs <= 0 {
            return Err(StoreError::Invalid { field: "ttl_secs", reason: format!("must be positive, not {ttl_secs}") });
        }
        let secret = hex::encode(random_bytes::<32>()?);
        let csrf = hex::encode(random_bytes::<32>()?);
        let expires_at = now.saturating_add(ttl_secs);
        let tx = self.conn.transaction()?;
        let user = tx
            .query_row(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"), [user.0], |r| {
                Ok(user_from_row(r))
            })
            .optional()?
            .ok_or(StoreError::NotFound { what: "user", id: user.0 })??;
        if user.disabled {
            return Err(StoreError::Invalid { field: "user", reason: format!("user {} is disabled", user.name) });
        }
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        tx.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_digest(&secret), user.id.0, csrf, now, expires_at],
        )?;
        append_audit(
            &tx,
            now,
            record::<()>(&user.name, "user.login", &format!("user:{}", user.name), None, None, None),
        )?;
        tx.commit()?;
        Ok((secret, Session { user, csrf, expires_at }))
    }

    /// The session for a cookie's secret. None when the secret is unknown, the session has expired
    /// or its user is disabled.
    pub fn session(&self, token: &str, now: i64) -> Result<Option<Session>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ?1"
        ))?;
        let mut rows = stmt.query([token_digest(token)])?;
        let Some(row) = rows.next()? else { return Ok(None) };
        let session = Session { user: user_from_row(row)?, csrf: row.get(5)?, expires_at: row.get(6)? };
        Ok((session.expires_at > now && !session.user.disabled).then_some(session))
    }

    /// Logs a session out. False if there was no such session.
    pub fn delete_session(&mut self, token: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_digest(token)])? > 0)
    }

    /// Deletes sessions that ended at or before `now`; returns how many.
    pub fn purge_expired_sessions(&mut self, now: i64) -> Result<u64> {
        Ok(self.conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])? as u64)
    }

    /// Creates an API token acting as `user_name`: returns the secret (`bwb_` and 40 hex
    /// characters), to be shown once, and the token as listed. Only SHA-256 of the secret is
    /// stored. The label (1 to 100 characters) says what the token is for. Audited as
    /// `token.create`, without the secret.
    pub fn create_token(&mut self, actor: &str, user_name: &str, label: &str, now: i64) -> Result<(String, ApiToken)> {
        validate::text("label", label, 1, 100, Lines::Single)?;
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes::<20>()?));
        let tx = self.conn.transaction()?;
        let user = load_user(&tx, user_name)?;
        if user.disabled {
            return Err(StoreError::Invalid { field: "user", reason: format!("user {user_name} is disabled") });
        }
        tx.execute(
            "INSERT INTO api_tokens (token_hash, user_id, label, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_digest(&secret), user.id.0, label, actor, now],
        )?;
        let token = ApiToken {
            id: TokenId(tx.last_insert_rowid()),
            user: user.name,
            label: label.into(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        append_audit(&tx, now, record(actor, "token.create", &token_object(token.id), None, Some(&token), None))?;
        tx.commit()?;
        Ok((secret, token))
    }

    /// The user an API token's secret acts as. None when the secret is unknown or malformed, the
    /// token is revoked or its user is disabled. Records the use in `last_used_at`, at most once a
    /// minute per token.
    pub fn token_user(&mut self, secret: &str, now: i64) -> Result<Option<User>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let found = {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {USER_COLUMNS}, t.id, t.last_used_at, t.revoked_at FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1"
            ))?;
            let mut rows = stmt.query([token_digest(secret)])?;
            match rows.next()? {
                Some(row) => {
                    let used: Option<i64> = row.get(6)?;
                    let revoked: Option<i64> = row.get(7)?;
                    Some((user_from_row(row)?, TokenId(row.get(5)?), used, revoked))
                }
                None => None,
            }
        };
        let Some((user, id, last_used, revoked)) = found else { return Ok(None) };
        if revoked.is_some() || user.disabled {
            return Ok(None);
        }
        if last_used.is_none_or(|at| now - at >= LAST_USED_EVERY) {
            self.conn.execute("UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2", params![now, id.0])?;
        }
        Ok(Some(user))
    }

    /// Revokes an API token; it stops working at once. Audited as `token.revoke`. Revoking a
    /// revoked token is refused, so the log holds one revocation per token.
    pub fn revoke_token(&mut self, actor: &str, id: TokenId, now: i64) -> Result<ApiToken> {
        let tx = self.conn.transaction()?;
        let before = tokens_where(&tx, "t.id = ?1", rusqlite::params![id.0])?
            .pop()
            .ok_or(StoreError::NotFound { what: "API token", id: id.0 })?;
        if let Some(at) = before.revoked_at {
            return Err(StoreError::Invalid {
                field: "token",
                reason: format!("token {id} was already revoked at {at}"),
            });
        }
        tx.execute("UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2", params![now, id.0])?;
        let after = ApiToken { revoked_at: Some(now), ..before.clone() };
        append_audit(&tx, now, record(actor, "token.revoke", &token_object(id), Some(&before), Some(&after), None))?;
        tx.commit()?;
        Ok(after)
    }

    /// API tokens, of one user or of all, revoked ones included, in id order.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        match user {
            Some(name) => {
                load_user(&self.conn, name)?;
                tokens_where(&self.conn, "u.name = ?1", rusqlite::params![name])
            }
            None => tokens_where(&self.conn, "1", rusqlite::params![]),
        }
    }
}

fn tokens_where(conn: &rusqlite::Connection, condition: &str, args: impl rusqlite::Params) -> Result<Vec<ApiToken>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT t.id, u.name, t.label, t.created_at, t.last_used_at, t.revoked_at FROM api_tokens t \
         JOIN users u ON u.id = t.user_id WHERE {condition} ORDER BY t.id"
    ))?;
    let rows = stmt.query_map(args, |r| {
        Ok(ApiToken {
            id: TokenId(r.get(0)?),
            user: r.get(1)?,
            label: r.get(2)?,
            created_at: r.get(3)?,
            last_used_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
