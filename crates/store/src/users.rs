//! `users`: accounts (optional; everything works anonymously).

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::unique_as_conflict;
use crate::{now, Error, Result};

id_type!(
    /// A user's id. Never reused, not even after an erasure.
    UserId
);

/// What an account may do. Admins are created from the command line, never by sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl TryFrom<String> for Role {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        match value.as_str() {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::Invalid("role", value)),
        }
    }
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    /// Trimmed and lower-cased; unique.
    pub email: String,
    pub email_verified_at: Option<OffsetDateTime>,
    /// An argon2id PHC string, made by the caller; the store never sees a password.
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    subject_salt: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// The irreversible id of an erased user (see [`crate::erasure`]): lower-case hex SHA-256 of (domain, salt, id).
pub fn subject_hash(user: UserId, subject_salt: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"takarir-erasure-v1");
    h.update(subject_salt);
    h.update(user.0.to_be_bytes());
    hex::encode(h.finalize())
}

impl User {
    /// The irreversible id that the erasure log records for this user (see [`crate::erasure`]).
    pub fn subject_hash(&self) -> String {
        subject_hash(self.id, &self.subject_salt)
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("email_verified_at", &self.email_verified_at)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What [`Users::create`] needs.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

const COLUMNS: &str = "id, email, email_verified_at, password_hash, role, subject_salt, created_at";

/// Email addresses are compared case-insensitively: stored trimmed and lower-cased.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    if !email_syntax_ok(&email) {
        // The error never carries the address: errors may be logged.
        return Err(Error::Invalid("email", "not an email address".into()));
    }
    Ok(email)
}

/// RFC 5321 limits and a conservative syntax: one `@`; a local part of 1–64 characters and a
/// domain of 1–253 (254 in all); no whitespace or control characters (a CR/LF would be a
/// header injection in a mail), none of `<>()[]\,;:"` (no quoted or bracketed forms, no
/// markup); a domain of dot-separated labels of 1–63 letters, digits and hyphens (or their
/// Unicode letters), neither starting nor ending with a hyphen.
fn email_syntax_ok(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    if email.len() > 254 || local.is_empty() || local.len() > 64 || domain.len() > 253 {
        return false;
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    if local.chars().any(bad)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

table!(
    /// The `users` table, borrowed from [`crate::Db::users`].
    Users
);

impl Users<'_> {
    /// Creates an account. [`Error::Conflict`]`("email")` if the address is taken.
    pub async fn create(&self, new: NewUser<'_>) -> Result<User> {
        let email = normalize_email(new.email)?;
        let mut salt = vec![0u8; 32];
        OsRng.fill_bytes(&mut salt);
        let sql = format!(
            "INSERT INTO users (email, password_hash, role, subject_salt, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            User,
            self.0,
            &sql,
            &email,
            new.password_hash,
            new.role.as_str(),
            &salt,
            now()
        )
        .map_err(|e| unique_as_conflict(e, "email"))
    }

    pub async fn get(&self, id: UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        Ok(fetch!(fetch_optional, User, self.0, &sql, id)?)
    }

    /// Looks an account up by email, case-insensitively.
    pub async fn get_by_email(&self, email: &str) -> Result<Option<User>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        Ok(fetch!(fetch_optional, User, self.0, &sql, &email)?)
    }

    /// Accounts in id order, `limit` at a time, after `after` (keyset paging).
    pub async fn list(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(fetch!(
            fetch_all,
            User,
            self.0,
            &sql,
            after.unwrap_or(UserId(0)),
            i64::from(limit)
        )?)
    }

    pub async fn count(&self) -> Result<u64> {
        let n: i64 = scalar!(fetch_one, _, self.0, "SELECT COUNT(*) FROM users")?;
        Ok(n as u64)
    }

    /// Changes the email address; the new one is unverified until [`Users::mark_email_verified`].
    pub async fn set_email(&self, id: UserId, email: &str) -> Result<()> {
        let email = normalize_email(email)?;
        let done = exec!(
            self.0,
            "UPDATE users SET email = $1, email_verified_at = NULL WHERE id = $2",
            &email,
            id
        )
        .map_err(|e| unique_as_conflict(e, "email"))?;
        found(done)
    }

    pub async fn mark_email_verified(&self, id: UserId, at: OffsetDateTime) -> Result<()> {
        let done = exec!(
            self.0,
            "UPDATE users SET email_verified_at = $1 WHERE id = $2",
            at,
            id
        )?;
        found(done)
    }

    pub async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = exec!(
            self.0,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            password_hash,
            id
        )?;
        found(done)
    }

    pub async fn set_role(&self, id: UserId, role: Role) -> Result<()> {
        let done = exec!(
            self.0,
            "UPDATE users SET role = $1 WHERE id = $2",
            role.as_str(),
            id
        )?;
        found(done)
    }
}

/// `Ok` when an update touched a row, [`Error::NotFound`] when it touched none.
pub(crate) fn found(rows: u64) -> Result<()> {
    if rows == 0 {
        Err(Error::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn email_syntax_follows_rfc_5321_limits() {
        assert_eq!(normalize_email(" Ani@Contoh.ID ").unwrap(), "ani@contoh.id");
        assert!(normalize_email("a.b+tag@sub.contoh.co.id").is_ok());
        let long_local = format!("{}@contoh.id", "a".repeat(65));
        let long_label = format!("a@{}.id", "b".repeat(64));
        let long_total = format!("a@{}.id", vec!["c".repeat(60); 5].join("."));
        for bad in [
            "",
            "ani",
            "ani@",
            "@contoh.id",
            "ani@contoh",
            "a@b@contoh.id",
            "ani\r\nbcc: x@y.id@contoh.id",
            "ani\n@contoh.id",
            "<script>alert(1)</script>@contoh.id",
            "ani@<script>.id",
            "an i@contoh.id",
            "ani@-contoh.id",
            "ani@contoh..id",
            ".ani@contoh.id",
            "\"ani\"@contoh.id",
            &long_local,
            &long_label,
            &long_total,
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
