//! The configuration file (`--config mlgate.toml` or `MLGATE_CONFIG`): the
//! same settings as the flags, named as the flags are (`bind = ":8080"`,
//! `max-tokens = 5000`; `max_tokens` works too).
//!
//! Precedence is flag, then `MLGATE_*` variable, then file, then built-in
//! default. Clap already ranks a flag over its variable over its default,
//! so the file's values become the defaults of the command clap parses:
//! one parser, one set of validations, one order, for `mlgate` alone and
//! for `mlgate serve` alike.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Command;

/// Settings that may not come from a file: where the file is, and what
/// belongs to one invocation rather than to a deployment.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// The file named by `--config` (or `--config=`) in `args`, else by
/// `MLGATE_CONFIG`. Read before clap parses, since it changes what clap
/// parses with.
pub fn path_from(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("MLGATE_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// A file's settings: each flag's long name and the values it gives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub path: PathBuf,
    pub values: BTreeMap<String, Vec<String>>,
}

impl FileSettings {
    /// Reads `path`: a TOML table of flag names to strings, numbers,
    /// booleans or (for list flags) arrays of them.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let name = key.replace('_', "-");
            let scalar = |value: &toml::Value| match value {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                _ => Err(format!(
                    "{}: `{key}` must be a string, number, boolean or a list of them",
                    path.display()
                )),
            };
            let list = match &value {
                toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
                other => vec![scalar(other)?],
            };
            if values.insert(name.clone(), list).is_some() {
                return Err(format!(
                    "{}: `{name}` is given twice (with dashes and with underscores)",
                    path.display()
                ));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }

    /// `command` with the file's values as the defaults of its flags, and of
    /// the same flags of its subcommands (`serve` and `config` take the
    /// server's). A name that is no setting of `command` is refused, so a
    /// typo does not silently leave a default in force.
    pub fn apply(&self, command: Command) -> Result<Command, String> {
        let settings = settable(&command);
        for (name, values) in &self.values {
            let many = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(name.as_str()))
                .is_some_and(|arg| arg.get_value_delimiter().is_some());
            if values.len() > 1 && !many {
                return Err(format!(
                    "{}: `{name}` takes one value, not a list",
                    self.path.display()
                ));
            }
            if !settings.iter().any(|s| s == name) {
                return Err(format!(
                    "{}: `{name}` is not a setting (settings are named like the flags of `mlgate serve --help`, without the dashes)",
                    self.path.display()
                ));
            }
        }
        Ok(self.apply_to(command))
    }

    fn apply_to(&self, mut command: Command) -> Command {
        let ids: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|arg| Some((arg.get_id().to_string(), arg.get_long()?.to_owned())))
            .collect();
        for (id, long) in ids {
            if let Some(values) = self.values.get(&long) {
                let values: Vec<clap::builder::OsStr> =
                    values.iter().map(|v| v.clone().into()).collect();
                // A secret from the file must not appear in `--help` as a default.
                command = command.mut_arg(id, |arg| {
                    let secret = arg.is_hide_env_values_set();
                    arg.default_values(values).hide_default_value(secret)
                });
            }
        }
        let subcommands: Vec<String> = command
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        for name in subcommands {
            command = command.mut_subcommand(name, |sub| self.apply_to(sub));
        }
        command
    }
}

/// The long names of the flags of `command` a file may set: those of the
/// command itself (the database, logs, and the server's when run alone).
pub fn settable(command: &Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_positional())
        .filter_map(|arg| arg.get_long())
        .filter(|long| !NOT_IN_FILE.contains(long))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_the_path_in_either_spelling() {
        assert_eq!(
            path_from(&args(&["mlgate", "--config", "a.toml", "serve"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            path_from(&args(&["mlgate", "serve", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }

    #[test]
    fn reads_scalars_and_lists_under_flag_names() {
        let file = FileSettings::parse(
            Path::new("m.toml"),
            "bind = ':9000'\nmax_tokens = 7\nplayground = false\ncors-origin = ['https://a.example', 'https://b.example']\n",
        )
        .unwrap();
        assert_eq!(file.values["bind"], vec![":9000"]);
        assert_eq!(file.values["max-tokens"], vec!["7"]);
        assert_eq!(file.values["playground"], vec!["false"]);
        assert_eq!(file.values["cors-origin"].len(), 2);
        assert!(FileSettings::parse(Path::new("m.toml"), "limits = { a = 1 }").is_err());
        assert!(FileSettings::parse(Path::new("m.toml"), "bind = ").is_err());
    }
}
