//! `history`: captions a user chose to keep (only while history is enabled). Never the image,
//! never EXIF values: the text, the settings, the time, and the image's size and format.

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::{found, UserId};
use crate::{now, Db, Error, Result};

id_type!(HistoryId);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryEntry {
    pub id: HistoryId,
    pub user_id: UserId,
    /// The model's caption, as generated.
    pub caption: String,
    /// The user's correction, kept beside the original.
    pub corrected_caption: Option<String>,
    pub lang: String,
    pub style: String,
    #[sqlx(try_from = "i32")]
    pub width: u32,
    #[sqlx(try_from = "i32")]
    pub height: u32,
    /// Image format name, e.g. `jpeg`.
    pub format: String,
    pub created_at: OffsetDateTime,
}

impl HistoryEntry {
    /// The caption the user stands by: the correction if any, else the model's.
    pub fn final_caption(&self) -> &str {
        self.corrected_caption.as_deref().unwrap_or(&self.caption)
    }
}

/// What [`History::create`] needs.
#[derive(Clone, Debug)]
pub struct NewHistoryEntry<'a> {
    pub caption: &'a str,
    pub lang: &'a str,
    pub style: &'a str,
    pub width: u32,
    pub height: u32,
    pub format: &'a str,
}

/// A page of [`History::list`]: newest first.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery<'a> {
    /// Only entries older than this one (keyset paging).
    pub before: Option<HistoryId>,
    /// Case-insensitive substring of the caption or the correction.
    pub search: Option<&'a str>,
    /// At most this many (0 means 50).
    pub limit: u32,
}

const COLUMNS: &str =
    "id, user_id, caption, corrected_caption, lang, style, width, height, format, created_at";

fn dimension(name: &'static str, value: u32) -> Result<i32> {
    i32::try_from(value).map_err(|_| Error::Invalid(name, value.to_string()))
}

/// `LIKE` pattern for a substring, with `\` as the escape character.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The `history` table, borrowed from [`Db::history`]. Every method is scoped to one user:
/// another user's entry reads as missing.
pub struct History<'a>(pub(crate) &'a Db);

impl History<'_> {
    pub async fn create(&self, user: UserId, new: NewHistoryEntry<'_>) -> Result<HistoryEntry> {
        let width = dimension("width", new.width)?;
        let height = dimension("height", new.height)?;
        let sql = format!(
            "INSERT INTO history (user_id, caption, lang, style, width, height, format, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            HistoryEntry,
            self.0,
            &sql,
            user,
            new.caption,
            new.lang,
            new.style,
            width,
            height,
            new.format,
            now()
        )
        .map_err(fk_as_not_found)
    }

    pub async fn get(&self, user: UserId, id: HistoryId) -> Result<Option<HistoryEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM history WHERE id = $1 AND user_id = $2");
        Ok(fetch!(
            fetch_optional,
            HistoryEntry,
            self.0,
            &sql,
            id,
            user
        )?)
    }

    /// The user's entries, newest first.
    pub async fn list(&self, user: UserId, query: HistoryQuery<'_>) -> Result<Vec<HistoryEntry>> {
        let limit = i64::from(if query.limit == 0 { 50 } else { query.limit });
        let before = query.before.unwrap_or(HistoryId(i64::MAX));
        let pattern = query.search.map(like_pattern);
        // SQLite's LIKE ignores ASCII case; PostgreSQL's needs ILIKE.
        let like = match self.0 {
            Db::Sqlite(_) => "LIKE",
            Db::Postgres(_) => "ILIKE",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM history WHERE user_id = $1 AND id < $2 \
             AND ($3 IS NULL OR caption {like} $3 ESCAPE '\\' OR corrected_caption {like} $3 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $4"
        );
        Ok(fetch!(
            fetch_all,
            HistoryEntry,
            self.0,
            &sql,
            user,
            before,
            pattern.as_deref(),
            limit
        )?)
    }

    pub async fn count(&self, user: UserId) -> Result<u64> {
        let n: i64 = scalar!(
            fetch_one,
            _,
            self.0,
            "SELECT COUNT(*) FROM history WHERE user_id = $1",
            user
        )?;
        Ok(n as u64)
    }

    /// Sets (or with `None`, clears) the user's correction; the model's caption stays.
    pub async fn correct(
        &self,
        user: UserId,
        id: HistoryId,
        corrected: Option<&str>,
    ) -> Result<()> {
        let n = exec!(
            self.0,
            "UPDATE history SET corrected_caption = $1 WHERE id = $2 AND user_id = $3",
            corrected,
            id,
            user
        )?;
        found(n)
    }

    /// Deletes one entry. [`Error::NotFound`] if the user has no such entry.
    pub async fn delete(&self, user: UserId, id: HistoryId) -> Result<()> {
        let n = exec!(
            self.0,
            "DELETE FROM history WHERE id = $1 AND user_id = $2",
            id,
            user
        )?;
        found(n)
    }

    /// Deletes all of the user's entries; returns how many.
    pub async fn delete_all(&self, user: UserId) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM history WHERE user_id = $1",
            user
        )?)
    }

    /// Deletes entries older than `before` for this user (retention); returns how many.
    pub async fn delete_older_than(&self, user: UserId, before: OffsetDateTime) -> Result<u64> {
        // Timestamps are text in SQLite: compare them as instants, not as strings.
        let sql = match self.0 {
            Db::Sqlite(_) => {
                "DELETE FROM history WHERE user_id = $1 AND julianday(created_at) < julianday($2)"
            }
            Db::Postgres(_) => "DELETE FROM history WHERE user_id = $1 AND created_at < $2",
        };
        Ok(exec!(self.0, sql, user, before)?)
    }

    /// Deletes every user's entries older than `before` (the operator's retention); returns
    /// how many.
    pub async fn delete_all_older_than(&self, before: OffsetDateTime) -> Result<u64> {
        let sql = match self.0 {
            Db::Sqlite(_) => "DELETE FROM history WHERE julianday(created_at) < julianday($1)",
            Db::Postgres(_) => "DELETE FROM history WHERE created_at < $1",
        };
        Ok(exec!(self.0, sql, before)?)
    }
}
