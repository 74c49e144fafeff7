//! `training_items`: images a user gave for training, with consent. The image is an encrypted
//! object (`object_path`, under the user's prefix in the object store); the row holds the final
//! caption (the user's correction if any). Withdrawing consent deletes the rows here and the
//! caller deletes the objects, at once.

use time::OffsetDateTime;

use crate::history::HistoryId;
use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, Result};

id_type!(TrainingItemId);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TrainingItem {
    pub id: TrainingItemId,
    pub user_id: UserId,
    pub object_path: String,
    /// The history entry of the same caption, if history was on.
    pub history_id: Option<HistoryId>,
    /// The final caption: the user's correction if any, else the model's.
    pub caption: String,
    pub lang: String,
    pub format: String,
    pub created_at: OffsetDateTime,
}

/// What [`Training::create`] needs.
#[derive(Clone, Debug)]
pub struct NewTrainingItem<'a> {
    pub object_path: &'a str,
    pub history_id: Option<HistoryId>,
    pub caption: &'a str,
    pub lang: &'a str,
    pub format: &'a str,
}

const COLUMNS: &str = "id, user_id, object_path, history_id, caption, lang, format, created_at";

table!(
    /// The `training_items` table, borrowed from [`crate::Db::training`].
    Training
);

impl Training<'_> {
    pub async fn create(&self, user: UserId, new: NewTrainingItem<'_>) -> Result<TrainingItem> {
        let sql = format!(
            "INSERT INTO training_items (user_id, object_path, history_id, caption, lang, format, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            TrainingItem,
            self.0,
            &sql,
            user,
            new.object_path,
            new.history_id,
            new.caption,
            new.lang,
            new.format,
            now()
        )
        .map_err(fk_as_not_found)
    }

    /// The user's items, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<TrainingItem>> {
        let sql = format!("SELECT {COLUMNS} FROM training_items WHERE user_id = $1 ORDER BY id");
        Ok(fetch!(fetch_all, TrainingItem, self.0, &sql, user)?)
    }

    /// Sets the caption of the user's item made with history entry `history` (its correction).
    pub async fn set_caption(
        &self,
        user: UserId,
        history: HistoryId,
        caption: &str,
    ) -> Result<u64> {
        Ok(exec!(
            self.0,
            "UPDATE training_items SET caption = $1 WHERE user_id = $2 AND history_id = $3",
            caption,
            user,
            history
        )?)
    }

    /// Deletes all of the user's rows (withdrawal); returns the object paths to delete.
    pub async fn delete_all(&self, user: UserId) -> Result<Vec<String>> {
        Ok(scalar!(
            fetch_all,
            String,
            self.0,
            "DELETE FROM training_items WHERE user_id = $1 RETURNING object_path",
            user
        )?)
    }

    /// Items of all users, for the training export, in id order.
    pub async fn list_all(
        &self,
        after: Option<TrainingItemId>,
        limit: u32,
    ) -> Result<Vec<TrainingItem>> {
        let sql =
            format!("SELECT {COLUMNS} FROM training_items WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(fetch!(
            fetch_all,
            TrainingItem,
            self.0,
            &sql,
            after.unwrap_or(TrainingItemId(0)),
            i64::from(limit)
        )?)
    }
}
