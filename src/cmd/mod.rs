//! One file per subcommand, each with its own `run`.

pub mod build;
pub mod check;
pub mod completions;
mod if_changed;
pub mod init;
pub mod man;
pub mod numbers;
pub mod probe;
pub mod sources;
pub mod streams;
mod table;

use crate::config::{Config, ConfigErrors};
use crate::exit::{Exit, Failure};

/// Load the configuration named on the command line (or the default one); a problem is a
/// usage error (exit 2).
pub fn load_config(arg: Option<&std::path::Path>) -> Result<Config, Failure> {
    let path = crate::config::locate(arg);
    Config::load_checked(&path, &[crate::rules::validate])
        .map_err(|e: ConfigErrors| Failure::new(Exit::Usage, e))
}

/// The proxy named `name`, or a usage error naming the configuration file.
pub fn find_proxy<'a>(
    config: &'a Config,
    name: &str,
) -> Result<&'a crate::config::ProxyDef, Failure> {
    config
        .file
        .proxies
        .iter()
        .find(|p| p.name.get_ref().0 == name)
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                anyhow::anyhow!("no proxy named `{name}` in {}", config.path.display()),
            )
        })
}
