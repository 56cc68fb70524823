//! The settings as text, read off the command definition itself so that
//! neither can drift from the flags: the effective configuration (`mlgate
//! config`) and the README's reference table (checked by a test).

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use super::file::{settable, FileSettings};
use crate::db::redact_url;

/// Every setting of `command` (its own flags: the database, logs and the
/// server's), in definition order.
fn settings(command: &Command) -> Vec<&Arg> {
    let names = settable(command);
    command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some_and(|l| names.iter().any(|n| n == l)))
        .collect()
}

/// The effective configuration of `matches` (what `mlgate config` parsed):
/// a TOML file of every setting with its value and where it came from.
/// Secrets (flags whose variable values are hidden) are redacted and left
/// commented out; the database URL keeps all but its password.
pub fn effective(command: &Command, matches: &ArgMatches, file: Option<&FileSettings>) -> String {
    let mut out = String::from(
        "# The settings `mlgate serve` would run with: flag > MLGATE_* variable > file > default.\n",
    );
    if let Some(file) = file {
        out.push_str(&format!("# file: {}\n", file.path.display()));
    }
    for arg in settings(command) {
        let long = arg.get_long().expect("settings have long names");
        let id = arg.get_id().as_str();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => arg
                .get_env()
                .map(|env| format!("env {}", env.to_string_lossy()))
                .unwrap_or_else(|| "env".into()),
            Some(ValueSource::DefaultValue)
                if file.is_some_and(|f| f.values.contains_key(long)) =>
            {
                "file".to_owned()
            }
            _ => "default".to_owned(),
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if values.is_empty() {
            out.push_str(&format!("# {long} =  (not set)\n"));
            continue;
        }
        // URLs lose their passwords; one that had one is shown commented
        // out, so that the output stays a file that means what it says.
        let shown: Vec<String> = values.iter().map(|v| redact_url(v)).collect();
        if shown != values {
            out.push_str(&format!(
                "# {long} = {}  # {source}, password redacted\n",
                toml_value(&shown, arg)
            ));
        } else if arg.is_hide_env_values_set() && long != "database-url" {
            out.push_str(&format!("# {long} = <redacted>  # {source}\n"));
        } else {
            out.push_str(&format!(
                "{long} = {}  # {source}\n",
                toml_value(&values, arg)
            ));
        }
    }
    out
}

/// Values as TOML: numbers and booleans bare, the rest quoted; lists for
/// flags that take several.
fn toml_value(values: &[String], arg: &Arg) -> String {
    let one = |v: &String| match v.parse::<i64>() {
        Ok(n) if n.to_string() == *v => v.clone(),
        _ if v == "true" || v == "false" => v.clone(),
        _ => toml::Value::String(v.clone()).to_string(),
    };
    let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
        || arg.get_value_delimiter().is_some();
    if many {
        format!(
            "[{}]",
            values.iter().map(one).collect::<Vec<_>>().join(", ")
        )
    } else {
        one(&values[0])
    }
}

/// The README's reference table: every setting with its flag, variable,
/// default and help, grouped under the headings of `mlgate serve --help`.
pub fn reference_table(command: &Command) -> String {
    let mut out = String::new();
    let mut heading: Option<&str> = None;
    for (i, arg) in settings(command).into_iter().enumerate() {
        let this = arg.get_help_heading().unwrap_or("General");
        if i == 0 || heading != Some(this) {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!(
                "**{this}**\n\n| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n"
            ));
            heading = Some(this);
        }
        let long = arg.get_long().expect("settings have long names");
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match defaults.as_slice() {
            _ if matches!(arg.get_action(), clap::ArgAction::SetTrue) => "off".to_owned(),
            [off] if off == "false" => "off".to_owned(),
            [] => "none".to_owned(),
            values => format!("`{}`", values.join(",")),
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        out.push_str(&format!("| `--{long}` | {env} | {default} | {help} |\n"));
    }
    out
}
