//! A build's variables from outside the buildspec: `--env-file` in the CodeBuild local
//! agent's format, and the local secret providers that stand in for Parameter Store and
//! Secrets Manager (`--secret`, `--secrets-file`, `--secret-from-env`).

use std::collections::BTreeMap;
use std::path::Path;

/// A bad `--env-file`, `--secrets-file` or secret reference.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// Parses an env file: `KEY=VALUE` per line, `#` comments and blank lines ignored, the
/// value taken literally (no quotes removed, no expansion), as the local agent does.
pub fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| EnvError(format!("{}: {e}", path.display())))?;
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(EnvError(format!(
                "{}:{}: expected KEY=VALUE (a host variable is never passed implicitly)",
                path.display(),
                number + 1
            )));
        };
        let key = key.trim_end();
        if !is_name(key) {
            return Err(EnvError(format!(
                "{}:{}: {key:?} is not a variable name",
                path.display(),
                number + 1
            )));
        }
        vars.push((key.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// Whether `s` is a valid shell variable name.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Secret values by name, for `env.parameter-store` (a parameter name such as
/// `/app/db/password`) and `env.secrets-manager` (`secret-id[:json-key[:stage[:version]]]`).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// `NAME=VALUE` from the command line.
    pub fn add_pair(&mut self, pair: &str) -> Result<(), EnvError> {
        match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                self.values.insert(name.to_owned(), value.to_owned());
                Ok(())
            }
            // The argument is not echoed: it may be a secret given without its name.
            _ => Err(EnvError(
                "--secret: expected NAME=VALUE (the argument is not shown: it may be a secret)"
                    .to_owned(),
            )),
        }
    }

    /// A secrets file: `NAME=VALUE` lines, like an env file but names may hold `/` and `:`.
    pub fn add_file(&mut self, path: &Path) -> Result<(), EnvError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EnvError(format!("{}: {e}", path.display())))?;
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match trimmed.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    self.values.insert(name.trim().to_owned(), value.to_owned());
                }
                _ => {
                    return Err(EnvError(format!(
                        "{}:{}: expected NAME=VALUE",
                        path.display(),
                        number + 1
                    )));
                }
            }
        }
        Ok(())
    }

    /// `--secret-from-env NAME`: the value of the host variable NAME, which the user
    /// explicitly allowed through.
    pub fn add_from_env(&mut self, name: &str) -> Result<(), EnvError> {
        let value = std::env::var(name).map_err(|_| {
            EnvError(format!(
                "--secret-from-env {name}: the host environment has no {name}"
            ))
        })?;
        self.values.insert(name.to_owned(), value);
        Ok(())
    }

    /// A Parameter Store parameter, by name.
    pub fn parameter(&self, name: &str) -> Result<String, EnvError> {
        self.values.get(name).cloned().ok_or_else(|| {
            EnvError(format!(
                "parameter {name} is not known; give it with --secret {name}=VALUE"
            ))
        })
    }

    /// A Secrets Manager reference: `secret-id[:json-key[:version-stage[:version-id]]]`.
    /// With a JSON key the secret must be a JSON object and the key's value is taken.
    pub fn secret(&self, reference: &str) -> Result<String, EnvError> {
        if let Some(value) = self.values.get(reference) {
            return Ok(value.clone());
        }
        // An ARN holds colons of its own; the secret id is the longest known prefix.
        let (id, rest) = self
            .values
            .keys()
            .filter(|id| {
                reference.starts_with(id.as_str())
                    && reference.as_bytes().get(id.len()) == Some(&b':')
            })
            .max_by_key(|id| id.len())
            .map(|id| (id.as_str(), &reference[id.len() + 1..]))
            .ok_or_else(|| {
                let id = reference.split(':').next().unwrap_or(reference);
                EnvError(format!(
                    "secret {id} is not known; give it with --secret {id}=VALUE"
                ))
            })?;
        let value = &self.values[id];
        let json_key = rest.split(':').next().unwrap_or_default();
        if json_key.is_empty() {
            return Ok(value.clone());
        }
        let object: serde_json::Value = serde_json::from_str(value).map_err(|_| {
            EnvError(format!(
                "secret {id} is not JSON, so it has no key {json_key}"
            ))
        })?;
        match object.get(json_key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(EnvError(format!("secret {id} has no key {json_key}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_references_pick_json_keys() {
        let mut secrets = Secrets::default();
        secrets
            .add_pair(r#"prod/db={"user":"admin","port":5432}"#)
            .unwrap();
        secrets.add_pair("token=abc").unwrap();
        assert_eq!(secrets.secret("token").unwrap(), "abc");
        assert_eq!(secrets.secret("prod/db:user").unwrap(), "admin");
        assert_eq!(secrets.secret("prod/db:port:AWSCURRENT").unwrap(), "5432");
        assert!(secrets.secret("prod/db:missing").is_err());
        let err = secrets.secret("other:key").unwrap_err().to_string();
        assert!(err.contains("secret other is not known"), "{err}");
    }

    #[test]
    fn env_files_are_literal_and_refuse_bare_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "# comment\nA=1\n\nB= \"quoted $X\"\n").unwrap();
        assert_eq!(
            parse_env_file(&path).unwrap(),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), " \"quoted $X\"".to_owned())
            ]
        );
        std::fs::write(&path, "A=1\nHOME\n").unwrap();
        let err = parse_env_file(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(":2: expected KEY=VALUE (a host variable is never passed implicitly)"),
            "{err}"
        );
    }
}
