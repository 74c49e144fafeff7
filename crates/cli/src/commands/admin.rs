//! `takarir admin create`: makes a staff (admin) account in the service's database. Admins are
//! never made by sign-up. The password is read from `TAKARIR_ADMIN_PASSWORD` or, without it,
//! from the first line of standard input (so it stays out of the shell history).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use takarir_server::ServerConfig;
use takarir_server::{create_admin, AdminOutcome};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create an admin account (or make an existing account an admin)
    Create {
        /// The admin's email address
        #[arg(long)]
        email: String,
        /// The service's TOML configuration file (for database_url, data_dir; TAKARIR_* override it)
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Action::Create { email, config } = args.action;
    let config = ServerConfig::load(config.as_deref())?;
    let password = match std::env::var("TAKARIR_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(create_admin(&config, &email, &password))? {
        AdminOutcome::Created(id) => println!("admin account created (id {id})"),
        AdminOutcome::Promoted(id) => println!("existing account {id} is now an admin"),
        AdminOutcome::AlreadyAdmin(id) => println!("account {id} is already an admin"),
    }
    Ok(0)
}
