//! `takarir models list|promote NAME|rollback`: the caption model versions of the models
//! directory and which one the service loads (recorded in `data_dir/models.json`; see
//! `takarir_server::models`). A change takes effect when the service next starts.

use std::path::PathBuf;

use takarir_server::models::Registry;
use takarir_server::ServerConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The models directory [default: the one holding the configured `model`]
    #[arg(long, global = true)]
    models_dir: Option<PathBuf>,
    /// The service's TOML configuration (TAKARIR_* variables override it)
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// One line per version: `*` for the one in use, its name, version, and what trained it
    List,
    /// Make a version the one in use (from the service's next start)
    Promote {
        /// The version's directory name
        name: String,
    },
    /// Go back to the version in use before the last promotion
    Rollback,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let config = ServerConfig::load(args.config.as_deref())?;
    let reg = Registry::new(&config, args.models_dir.as_deref());
    match args.action {
        Action::List => {
            for v in reg.list()? {
                let mark = if v.active { "*" } else { " " };
                let (version, trained) = match &v.card {
                    Some(c) => (
                        c.version.clone(),
                        format!(
                            "exports {:?}, consented items {:?}",
                            c.training_exports, c.consented_items_per_language
                        ),
                    ),
                    None => ("-".into(), "no card.json".into()),
                };
                println!("{mark} {}\t{version}\t{trained}", v.name);
            }
        }
        Action::Promote { name } => {
            let v = reg.promote(&name)?;
            println!(
                "{} is now the model in use; restart the service to load it",
                v.name
            );
        }
        Action::Rollback => {
            let back = reg.rollback()?;
            println!(
                "{} is now the model in use; restart the service to load it",
                back.display()
            );
        }
    }
    Ok(0)
}
