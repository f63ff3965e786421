//! `lineup init [PATH]`: write a commented starter configuration that `lineup check` accepts.
//! Refuses to overwrite anything.

use std::io::Write;

use anyhow::Context;

use crate::cli::InitArgs;
use crate::exit::{Exit, Failure};

pub const STARTER: &str = include_str!("starter.toml");

pub fn run(args: &InitArgs) -> Result<Exit, Failure> {
    let path = &args.path;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("{} already exists; not overwriting it", path.display()),
            ));
        }
        Err(e) => {
            return Err(Failure::new(
                Exit::Runtime,
                anyhow::Error::new(e).context(format!("cannot create {}", path.display())),
            ));
        }
    };
    file.write_all(STARTER.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::info!(
        "wrote {}; edit it, then run `lineup check {}`",
        path.display(),
        path.display()
    );
    Ok(Exit::Success)
}
