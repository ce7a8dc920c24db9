//! The environment as a source: `ENATE_BRIDGE__<SECTION>__<KEY>` variables
//! override the file, lists comma-separated; a variable that looks meant for
//! the configuration but is misspelt stops the start instead of being ignored.
//!
//! Read by hand rather than with `config::Environment`: its list parsing first
//! turns a value into a number or a boolean, so a secret such as `12345` could
//! not be given as a list item.

use config::{ConfigBuilder, builder::DefaultState};

use super::ConfigError;

const ENV_PREFIX: &str = "ENATE_BRIDGE";
/// Keys whose environment value is a comma-separated list.
const ENV_LIST_KEYS: &[&str] = &["auth.secrets", "amqp.urls"];

/// The sections, in upper case, to recognise a misspelt variable.
const SECTIONS: &[&str] = &[
    "SERVER", "ADMIN", "AUTH", "AMQP", "EVENTS", "INGRESS", "SPOOL", "DEDUP", "LOG", "ENATE",
];

/// Whether `name` looks meant for the configuration but is not spelt as
/// `ENATE_BRIDGE__SECTION__KEY` (one underscore after the prefix, or a section
/// right after it). Other variables of the prefix (the test suite's
/// `ENATE_BRIDGE_TEST_*`) are left alone.
fn is_stray_variable(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return false;
    };
    if rest.starts_with("__") {
        return false;
    }
    let rest = rest.trim_start_matches('_');
    let first_word = rest.split('_').next().unwrap_or_default();
    rest.contains("__") || SECTIONS.contains(&first_word)
}

/// Sets each configuration variable of `variables` as an override of
/// `builder`, after refusing the first misspelt one.
pub(super) fn apply(
    mut builder: ConfigBuilder<DefaultState>,
    variables: Vec<(String, String)>,
) -> Result<ConfigBuilder<DefaultState>, ConfigError> {
    if let Some((stray, _)) = variables.iter().find(|(name, _)| is_stray_variable(name)) {
        return Err(ConfigError::predicate(
            stray.clone(),
            "is not read: configuration variables are spelt ENATE_BRIDGE__<SECTION>__<KEY>, \
             with two underscores after ENATE_BRIDGE and between section and key \
             (e.g. ENATE_BRIDGE__SERVER__BIND)",
        ));
    }
    for (name, value) in variables {
        let Some(rest) = name
            .strip_prefix(ENV_PREFIX)
            .and_then(|rest| rest.strip_prefix("__"))
        else {
            continue;
        };
        let key = rest.to_lowercase().replace("__", ".");
        let overridden = if ENV_LIST_KEYS.contains(&key.as_str()) {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect();
            builder.set_override(&key, items)
        } else {
            builder.set_override(&key, value)
        };
        builder = overridden
            .map_err(|error| ConfigError::new(name.clone(), error.to_string()).caused_by(error))?;
    }
    Ok(builder)
}
