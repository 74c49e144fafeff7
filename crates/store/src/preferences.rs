//! `preferences`: one row per account. History and training consent are off by default.

use time::OffsetDateTime;

use crate::users::UserId;
use crate::{now, Error, Result};

/// A user's preferences. `None` means "the service's default".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    pub lang: Option<String>,
    pub style: Option<String>,
    pub alternatives: Option<u32>,
    /// Caption history is kept only while this is on. Off by default.
    pub history_enabled: bool,
    /// Mirrors the latest training consent (the ledger in `consents` is the record). Off by default.
    pub training_consent: bool,
}

/// Preferences as stored, with the time of the last change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPreferences {
    pub user_id: UserId,
    pub preferences: Preferences,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: UserId,
    lang: Option<String>,
    style: Option<String>,
    alternatives: Option<i32>,
    history_enabled: bool,
    training_consent: bool,
    updated_at: OffsetDateTime,
}

impl From<Row> for StoredPreferences {
    fn from(r: Row) -> Self {
        StoredPreferences {
            user_id: r.user_id,
            preferences: Preferences {
                lang: r.lang,
                style: r.style,
                alternatives: r.alternatives.and_then(|n| u32::try_from(n).ok()),
                history_enabled: r.history_enabled,
                training_consent: r.training_consent,
            },
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str =
    "user_id, lang, style, alternatives, history_enabled, training_consent, updated_at";

table!(
    /// The `preferences` table, borrowed from [`crate::Db::preferences`].
    PreferencesTable
);

impl PreferencesTable<'_> {
    /// The stored row, if the user ever saved preferences.
    pub async fn get(&self, user: UserId) -> Result<Option<StoredPreferences>> {
        let sql = format!("SELECT {COLUMNS} FROM preferences WHERE user_id = $1");
        let row = fetch!(fetch_optional, Row, self.0, &sql, user)?;
        Ok(row.map(StoredPreferences::from))
    }

    /// The user's preferences, or the defaults (everything off) if none were saved.
    pub async fn get_or_default(&self, user: UserId) -> Result<Preferences> {
        Ok(self
            .get(user)
            .await?
            .map(|p| p.preferences)
            .unwrap_or_default())
    }

    /// Creates or replaces the user's preferences. [`Error::NotFound`] if the user does not exist.
    pub async fn set(&self, user: UserId, prefs: &Preferences) -> Result<StoredPreferences> {
        let alternatives = prefs
            .alternatives
            .map(|n| match i32::try_from(n) {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(Error::Invalid("alternatives", n.to_string())),
            })
            .transpose()?;
        let sql = format!(
            "INSERT INTO preferences ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET lang = excluded.lang, style = excluded.style, \
             alternatives = excluded.alternatives, history_enabled = excluded.history_enabled, \
             training_consent = excluded.training_consent, updated_at = excluded.updated_at \
             RETURNING {COLUMNS}"
        );
        let row = fetch!(
            fetch_one,
            Row,
            self.0,
            &sql,
            user,
            prefs.lang.as_deref(),
            prefs.style.as_deref(),
            alternatives,
            prefs.history_enabled,
            prefs.training_consent,
            now()
        )
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound,
            _ => Error::Database(e),
        })?;
        Ok(row.into())
    }

    /// Forgets the user's preferences (back to the defaults). True if there were any.
    pub async fn delete(&self, user: UserId) -> Result<bool> {
        let n = exec!(self.0, "DELETE FROM preferences WHERE user_id = $1", user)?;
        Ok(n > 0)
    }

    /// Users who currently have training consent on, in id order (for the training export).
    pub async fn list_training_consenters(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>> {
        Ok(scalar!(
            fetch_all,
            UserId,
            self.0,
            "SELECT user_id FROM preferences WHERE training_consent AND user_id > $1 \
             ORDER BY user_id LIMIT $2",
            after.unwrap_or(UserId(0)),
            i64::from(limit)
        )?)
    }
}
