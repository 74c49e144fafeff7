//! `usage_daily`: aggregate caption counters per day, language and style. Nothing here
//! identifies a person; anonymous use may write here and nowhere else.

use time::Date;

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub day: Date,
    pub lang: String,
    pub style: String,
    pub count: i64,
}

table!(
    /// The `usage_daily` table, borrowed from [`crate::Db::usage`].
    Usage
);

impl Usage<'_> {
    /// Adds `n` captions to the counter of (`day`, `lang`, `style`), creating it if needed.
    pub async fn add(&self, day: Date, lang: &str, style: &str, n: u32) -> Result<()> {
        if lang.is_empty() || style.is_empty() {
            return Err(Error::Invalid(
                "usage",
                "language and style are required".into(),
            ));
        }
        exec!(self.0, "INSERT INTO usage_daily (day, lang, style, count) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (day, lang, style) DO UPDATE SET count = usage_daily.count + excluded.count", day, lang, style, i64::from(n)).map(|_| ())?;
        Ok(())
    }

    /// One counter, if it exists.
    pub async fn get(&self, day: Date, lang: &str, style: &str) -> Result<Option<UsageRow>> {
        Ok(fetch!(
            fetch_optional,
            UsageRow,
            self.0,
            "SELECT day, lang, style, count FROM usage_daily \
             WHERE day = $1 AND lang = $2 AND style = $3",
            day,
            lang,
            style
        )?)
    }

    /// Counters for the days `from..=to`, by day, language, style.
    pub async fn list(&self, from: Date, to: Date) -> Result<Vec<UsageRow>> {
        Ok(fetch!(
            fetch_all,
            UsageRow,
            self.0,
            "SELECT day, lang, style, count FROM usage_daily WHERE day >= $1 AND day <= $2 \
             ORDER BY day, lang, style",
            from,
            to
        )?)
    }

    /// Deletes the counters of days before `day` (retention); returns how many rows.
    pub async fn delete_before(&self, day: Date) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM usage_daily WHERE day < $1",
            day
        )?)
    }
}
