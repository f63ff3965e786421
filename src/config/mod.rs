//! Loading the TOML proxy definition: read the file, deserialize it into the typed schema
//! (`schema.rs`), check everything that serde cannot (`validate.rs`), and report problems with
//! the file, line and column they come from.

mod schema;
pub mod units;
mod validate;
pub mod values;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use schema::*;

/// A problem with the configuration, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", crate::secrets::mask(&self.message))
    }
}

/// All the problems found in one configuration file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A loaded and validated configuration.
#[derive(Debug)]
pub struct Config {
    pub file: ConfigFile,
    /// The configuration file as given.
    pub path: PathBuf,
    /// The directory relative paths in the file resolve against.
    pub dir: PathBuf,
    /// The file's text, for turning spans into lines and columns.
    pub text: String,
}

/// A check of a parsed configuration made by a module that builds on this one (the rules
/// engine compiles every filter and mapping, `rules::validate`). Loading takes such checks as
/// arguments, so that configuration depends on none of the modules that read it.
pub type Check = fn(&Config) -> Vec<ConfigError>;

impl Config {
    /// Read, parse and validate `path` with this module's checks only (the shape of the file,
    /// names, references between sections); [`Config::load_checked`] adds others.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_checked(path, &[])
    }

    /// Read, parse and validate `path`: this module's checks, then `checks`, every error
    /// reported.
    pub fn load_checked(path: &Path, checks: &[Check]) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                path: path.to_path_buf(),
                line: None,
                column: None,
                message: format!("cannot read configuration: {e}"),
            }])
        })?;
        Self::from_text_checked(path, text, checks)
    }

    /// Parse and validate configuration text that came from `path` (this module's checks
    /// only, as [`Config::load`]).
    pub fn from_text(path: &Path, text: String) -> Result<Config, ConfigErrors> {
        Self::from_text_checked(path, text, &[])
    }

    /// Parse and validate configuration text that came from `path`, with `checks` too.
    pub fn from_text_checked(
        path: &Path,
        text: String,
        checks: &[Check],
    ) -> Result<Config, ConfigErrors> {
        let text = text
            .strip_prefix('\u{feff}')
            .map(str::to_string)
            .unwrap_or(text);
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(&text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigErrors(vec![ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }])
        })?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let config = Config {
            file,
            path: path.to_path_buf(),
            dir,
            text,
        };
        let mut errors = validate::validate(&config);
        for check in checks {
            errors.extend(check(&config));
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// An error located at a span of the file.
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(&self.text, span.start);
        ConfigError {
            path: self.path.clone(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    /// An error located `offset` characters into a string value that starts at `span`
    /// (for expressions: the column of the problem inside the expression).
    pub fn error_in_string(
        &self,
        span: Range<usize>,
        offset: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        // The span starts at the opening quote (or quotes) of the string value.
        let quote_len = self.text[span.start..]
            .chars()
            .take_while(|c| *c == '"' || *c == '\'')
            .count()
            .min(3);
        let (line, column) = line_col(&self.text, span.start);
        ConfigError {
            path: self.path.clone(),
            line: Some(line),
            column: Some(column + quote_len + offset),
            message: message.into(),
        }
    }

    /// A path from the configuration, resolved against the configuration's directory.
    pub fn resolve(&self, value: &str) -> PathBuf {
        let p = Path::new(value);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.file
            .sources
            .iter()
            .find(|s| s.name.get_ref().0 == name)
    }

    pub fn epg(&self, name: &str) -> Option<&EpgDef> {
        self.file.epgs.iter().find(|s| s.name.get_ref().0 == name)
    }

    pub fn filter(&self, name: &str) -> Option<&FilterDef> {
        self.file
            .filters
            .iter()
            .find(|s| s.name.get_ref().0 == name)
    }

    pub fn mapping(&self, name: &str) -> Option<&MappingDef> {
        self.file
            .mappings
            .iter()
            .find(|s| s.name.get_ref().0 == name)
    }

    /// The active sources of a proxy, in its priority order.
    pub fn active_sources<'a>(
        &'a self,
        proxy: &'a ProxyDef,
    ) -> impl Iterator<Item = &'a SourceDef> {
        proxy
            .sources
            .get_ref()
            .iter()
            .filter_map(|n| self.source(&n.get_ref().0))
            .filter(|s| s.active)
    }
}

/// Whether a source location is a URL rather than a path.
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Where the configuration is: the argument, else `$LINEUP_CONFIG`, else `./lineup.toml`.
pub fn locate(arg: Option<&Path>) -> PathBuf {
    if let Some(p) = arg {
        return p.to_path_buf();
    }
    match std::env::var_os("LINEUP_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("lineup.toml"),
    }
}
