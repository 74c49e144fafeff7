//! `user_usage_daily`: one account's caption counts per day, language and style, shown to that
//! user only. The operators' view is `usage_daily`, which names no one.

use time::Date;

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::Result;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UserUsageRow {
    pub day: Date,
    pub lang: String,
    pub style: String,
    pub count: i64,
}

table!(
    /// The `user_usage_daily` table, borrowed from [`crate::Db::user_usage`].
    UserUsage
);

impl UserUsage<'_> {
    /// Adds `n` captions to the user's counter of (`day`, `lang`, `style`).
    pub async fn add(
        &self,
        user: UserId,
        day: Date,
        lang: &str,
        style: &str,
        n: u32,
    ) -> Result<()> {
        exec!(self.0, "INSERT INTO user_usage_daily (user_id, day, lang, style, count) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, day, lang, style) \
             DO UPDATE SET count = user_usage_daily.count + excluded.count", user, day, lang, style, i64::from(n)).map(|_| ())
        .map_err(fk_as_not_found)
    }

    /// All of the user's counters, by day, language, style.
    pub async fn list(&self, user: UserId) -> Result<Vec<UserUsageRow>> {
        Ok(fetch!(
            fetch_all,
            UserUsageRow,
            self.0,
            "SELECT day, lang, style, count FROM user_usage_daily WHERE user_id = $1 \
             ORDER BY day, lang, style",
            user
        )?)
    }
}
