//! Staff accounts. An admin is made only from the command line (`takarir admin create`), never
//! by sign-up: whoever can run commands on the server already holds its data. Admin routes are
//! in [`crate::accounts`] (aggregates, account status, and reason-required, audited access to
//! one user's data).

use takarir_store::users::{NewUser, Role};

use crate::{auth, ServerConfig, Storage};

/// What [`create_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new admin account, with this id.
    Created(i64),
    /// An existing account (id) became an admin; its password is unchanged.
    Promoted(i64),
    /// The account (id) was an admin already.
    AlreadyAdmin(i64),
}

/// Creates an admin account with `email` and `password` in the configured database, or makes
/// the existing account with that email an admin.
pub async fn create_admin(
    config: &ServerConfig,
    email: &str,
    password: &str,
) -> anyhow::Result<AdminOutcome> {
    let storage = Storage::open(config).await?;
    let users = storage.db.users();
    let outcome = match users.get_by_email(email).await? {
        Some(u) if u.role == Role::Admin => AdminOutcome::AlreadyAdmin(u.id.0),
        Some(u) => {
            users.set_role(u.id, Role::Admin).await?;
            AdminOutcome::Promoted(u.id.0)
        }
        None => {
            let email = takarir_store::users::normalize_email(email)
                .map_err(|_| anyhow::anyhow!("not a valid email address"))?;
            auth::check_password(&email, password)
                .map_err(|e| anyhow::anyhow!("{}", e.messages(crate::i18n::Lang::En).1))?;
            let hash = auth::hash_password(password)
                .await
                .map_err(|_| anyhow::anyhow!("hashing the password failed"))?;
            let u = users
                .create(NewUser {
                    email: &email,
                    password_hash: &hash,
                    role: Role::Admin,
                })
                .await?;
            AdminOutcome::Created(u.id.0)
        }
    };
    storage.db.close().await;
    Ok(outcome)
}
