//! AWS keys and region for a Bedrock provider that names none in its config, found the way
//! AWS's tools find them: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`), then the shared credentials and
//! config files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, default `~/.aws/…`) under
//! the profile the config names, else `AWS_PROFILE`, else `default`. Read once at load time.

use std::path::PathBuf;

use crate::config::{AwsKeys, Secret};

/// Where to look: the process environment, or a fixed map in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn var(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

fn secret(value: &str, origin: String) -> Secret {
    Secret::new(value.trim().to_owned(), origin)
}

fn home_file(env: Env<'_>, file_var: &str, name: &str) -> Option<PathBuf> {
    var(env, file_var)
        .map(PathBuf::from)
        .or_else(|| var(env, "HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

/// The `key = value` pairs of section `[section]` of an INI-style AWS file.
fn section(text: &str, wanted: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == wanted;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

fn profile_name(env: Env<'_>, profile: Option<&str>) -> String {
    profile
        .map(str::to_owned)
        .or_else(|| var(env, "AWS_PROFILE"))
        .unwrap_or_else(|| "default".into())
}

/// Keys from the environment, else the profile in the shared credentials file.
pub fn keys(env: Env<'_>, profile: Option<&str>) -> Result<AwsKeys, String> {
    if let (Some(id), Some(key)) = (
        var(env, "AWS_ACCESS_KEY_ID"),
        var(env, "AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(AwsKeys {
            access_key_id: secret(&id, "env AWS_ACCESS_KEY_ID".into()),
            secret_access_key: secret(&key, "env AWS_SECRET_ACCESS_KEY".into()),
            session_token: var(env, "AWS_SESSION_TOKEN")
                .map(|t| secret(&t, "env AWS_SESSION_TOKEN".into())),
        });
    }
    let name = profile_name(env, profile);
    let path = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .ok_or("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or HOME")?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no AWS credentials in the environment, and cannot read {}: {e}",
            path.display()
        )
    })?;
    let pairs = section(&text, &name);
    let from = |k: &str| format!("{k} of profile {name} in {}", path.display());
    match (
        lookup(&pairs, "aws_access_key_id"),
        lookup(&pairs, "aws_secret_access_key"),
    ) {
        (Some(id), Some(key)) => Ok(AwsKeys {
            access_key_id: secret(&id, from("aws_access_key_id")),
            secret_access_key: secret(&key, from("aws_secret_access_key")),
            session_token: lookup(&pairs, "aws_session_token")
                .map(|t| secret(&t, from("aws_session_token"))),
        }),
        _ => Err(format!(
            "no AWS credentials: the environment has none and profile {name:?} in {} has no \
             aws_access_key_id and aws_secret_access_key",
            path.display()
        )),
    }
}

/// The region from the environment, else the profile in the shared config file.
pub fn region(env: Env<'_>, profile: Option<&str>) -> Option<String> {
    if let Some(r) = var(env, "AWS_REGION").or_else(|| var(env, "AWS_DEFAULT_REGION")) {
        return Some(r);
    }
    let name = profile_name(env, profile);
    let text = std::fs::read_to_string(home_file(env, "AWS_CONFIG_FILE", "config")?).ok()?;
    // The config file names profiles `[profile x]`, except `[default]`.
    let header = if name == "default" {
        name
    } else {
        format!("profile {name}")
    };
    lookup(&section(&text, &header), "region")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, String>);

    impl Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn the_environment_comes_first() {
        let env = Map(HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
            ("AWS_SESSION_TOKEN", "tok".to_owned()),
            ("AWS_DEFAULT_REGION", "eu-west-1".to_owned()),
        ]));
        let k = keys(&|n| env.get(n), None).unwrap();
        assert_eq!(k.access_key_id.expose(), "AKIDENV");
        assert_eq!(k.session_token.unwrap().expose(), "tok");
        assert_eq!(region(&|n| env.get(n), None).as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn profiles_come_from_the_shared_files() {
        let dir = std::env::temp_dir().join(format!("sg-aws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = s1\n\n\
             # work\n[work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=s2\naws_session_token=t2\n",
        )
        .unwrap();
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[default]\nregion = us-east-1\n[profile work]\nregion=us-west-2\n",
        )
        .unwrap();
        let env = Map(HashMap::from([
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ]));
        let k = keys(&|n| env.get(n), None).unwrap();
        assert_eq!(
            (k.access_key_id.expose(), k.session_token.is_none()),
            ("AKIDDEF", true)
        );
        let w = keys(&|n| env.get(n), Some("work")).unwrap();
        assert_eq!(w.secret_access_key.expose(), "s2");
        assert_eq!(w.session_token.unwrap().expose(), "t2");
        assert_eq!(region(&|n| env.get(n), None).as_deref(), Some("us-east-1"));
        assert_eq!(
            region(&|n| env.get(n), Some("work")).as_deref(),
            Some("us-west-2")
        );
        let e = keys(&|n| env.get(n), Some("missing")).unwrap_err();
        assert!(e.contains("\"missing\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
