//! The vendor-specific fields of a provider block, read as the family table says each vendor
//! takes them ([`Setting`]): headers they imply, Azure's `api-version`, the default
//! `max_tokens`, a cloud project and region, and credentials that are not an `api_key`
//! (Google service accounts or tokens, AWS keys). A field the vendor does not take is a
//! problem that names the vendors that do.

use std::path::PathBuf;
use std::sync::Arc;

use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::parse::{Walker, get, join, type_name};
use super::{AwsKeys, Token, wire};
use crate::credentials;
use crate::providers::family::{self, Setting, Vendor};

/// The Azure OpenAI `api-version` used when a provider names none.
const AZURE_API_VERSION: &str = "2024-10-21";

/// What the vendor-specific fields came to.
pub(super) struct Settings {
    pub api_version: Option<String>,
    pub default_max_tokens: u64,
    pub region: Option<String>,
    pub project: Option<String>,
    pub aws: Option<AwsKeys>,
    pub token: Option<Arc<Token>>,
    /// The vendor's default base URL, its `{region}` filled in.
    pub base_url: Option<String>,
}

impl Walker<'_> {
    /// Reads the vendor's own fields of provider block `h`; header-like ones go to `headers`.
    pub(super) fn protocol_settings(
        &mut self,
        h: &Hash,
        path: &str,
        vendor: &Vendor,
        headers: &mut Vec<(String, String)>,
    ) -> Option<Settings> {
        let takes = |s: Setting| vendor.settings.contains(&s);
        let mut ok = true;
        for field in family::settings() {
            let taken = vendor.settings.iter().any(|s| s.fields().contains(&field));
            if get(h, field).is_some() && !taken {
                let who = family::taking(field);
                self.problem(
                    &join(path, field),
                    format_args!("only for protocol {who}, not {}", vendor.name),
                );
                ok = false;
            }
        }
        let mut out = Settings {
            api_version: None,
            default_max_tokens: 4096,
            region: None,
            project: None,
            aws: None,
            token: None,
            base_url: None,
        };
        if takes(Setting::AnthropicVersion) {
            let version = self
                .header_text(h, path, "anthropic_version")
                .unwrap_or_else(|| crate::providers::anthropic::API_VERSION.to_owned());
            headers.push(("anthropic-version".into(), version));
        }
        if takes(Setting::AnthropicBeta) {
            ok &= self.anthropic_beta(h, path, headers);
        }
        if takes(Setting::ApiVersion) {
            let v = self.header_text(h, path, "api_version");
            out.api_version = Some(v.unwrap_or_else(|| AZURE_API_VERSION.into()));
        }
        if takes(Setting::Organization)
            && let Some(org) = self.header_text(h, path, "organization")
        {
            headers.push(("openai-organization".into(), org));
        }
        if takes(Setting::OpenAiProject)
            && let Some(project) = self.header_text(h, path, "project")
        {
            headers.push(("openai-project".into(), project));
        }
        if let Some(y) = get(h, "default_max_tokens")
            && let Some(n) = self.uint(y, &join(path, "default_max_tokens"), 1)
        {
            out.default_max_tokens = n;
        }
        if takes(Setting::CloudProject) {
            out.project = self.cloud_name(h, path, "project");
            if out.project.is_none() && get(h, "project").is_none() {
                self.problem(
                    &join(path, "project"),
                    "missing (the Google Cloud project id)",
                );
                ok = false;
            }
        }
        if takes(Setting::Region) {
            out.region = self.cloud_name(h, path, "region");
        }
        if takes(Setting::GoogleAuth) {
            out.token = self.google_auth(h, path);
            ok &= out.token.is_some();
        }
        if takes(Setting::AwsAuth) {
            let profile = get(h, "profile").and_then(|y| self.string(y, &join(path, "profile")));
            if out.region.is_none() {
                out.region = credentials::aws::region(self.env, profile.as_deref());
            }
            // A Bedrock API key (`api_key`) is a bearer token: no request signing then.
            if get(h, "api_key").is_none() {
                out.aws = self.aws_keys(h, path, profile.as_deref());
                ok &= out.aws.is_some();
            }
        }
        if let Some(url) = vendor.base_url {
            match (url.contains("{region}"), &out.region) {
                (false, _) => out.base_url = Some(url.to_owned()),
                (true, Some(r)) if r == "global" => {
                    out.base_url = Some(url.replace("{region}-", "").replace("{region}.", ""));
                }
                (true, Some(r)) => out.base_url = Some(url.replace("{region}", r)),
                (true, None) => {
                    self.problem(
                        &join(path, "region"),
                        "missing (no region in the config or the environment)",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A string field that becomes a header value.
    fn header_text(&mut self, h: &Hash, path: &str, field: &str) -> Option<String> {
        let y = get(h, field)?;
        let s = self.string(y, &join(path, field))?;
        match wire::header_value(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                self.problem(&join(path, field), e);
                None
            }
        }
    }

    /// A project id or region: it goes into URLs, so lowercase letters, digits and dashes.
    fn cloud_name(&mut self, h: &Hash, path: &str, field: &str) -> Option<String> {
        let y = get(h, field)?;
        let s = self.string(y, &join(path, field))?;
        let fine = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !fine {
            self.problem(
                &join(path, field),
                format_args!("{s:?} is not a {field} name (lowercase letters, digits, dashes)"),
            );
            return None;
        }
        Some(s)
    }

    fn anthropic_beta(
        &mut self,
        h: &Hash,
        path: &str,
        headers: &mut Vec<(String, String)>,
    ) -> bool {
        let Some(y) = get(h, "anthropic_beta") else {
            return true;
        };
        let bp = join(path, "anthropic_beta");
        let Yaml::Array(items) = y else {
            self.problem(&bp, format_args!("expected a list, found {}", type_name(y)));
            return false;
        };
        let names: Vec<&str> = items.iter().filter_map(|i| i.as_str()).collect();
        let flaw = names.iter().find_map(|n| wire::name(n).err());
        if names.len() != items.len() {
            self.problem(&bp, "expected a list of beta names");
            return false;
        }
        if let Some(e) = flaw {
            self.problem(&bp, e);
            return false;
        }
        if !names.is_empty() {
            headers.push(("anthropic-beta".into(), names.join(",")));
        }
        true
    }

    /// `credentials: { file: sa.json }` (a service-account key, exchanged for tokens off the
    /// shards) or `access_token: { env | file }` (used as it is).
    fn google_auth(&mut self, h: &Hash, path: &str) -> Option<Arc<Token>> {
        match (get(h, "credentials"), get(h, "access_token")) {
            (Some(y), None) => {
                let cp = join(path, "credentials");
                let c = self.mapping(y, &cp, &["file"])?;
                let Some(file) = get(c, "file").and_then(|f| self.string(f, &join(&cp, "file")))
                else {
                    self.problem(&cp, "expected { file: PATH } of a service-account key");
                    return None;
                };
                match credentials::service_account(&PathBuf::from(&file)) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        self.problem(&cp, e);
                        None
                    }
                }
            }
            (None, Some(y)) => {
                let s = self.secret(y, &join(path, "access_token"))?;
                Some(Arc::new(Token::fixed(s.expose())))
            }
            (Some(_), Some(_)) => {
                self.problem(path, "give credentials or access_token, not both");
                None
            }
            (None, None) => {
                self.problem(
                    &join(path, "credentials"),
                    "missing: credentials: { file: sa.json } or access_token: { env: NAME }",
                );
                None
            }
        }
    }

    /// Keys from the config, else from the environment and the shared files.
    fn aws_keys(&mut self, h: &Hash, path: &str, profile: Option<&str>) -> Option<AwsKeys> {
        let mut secret = |field: &str| {
            get(h, field).map(|y| (self.secret(y, &join(path, field)), field.to_owned()))
        };
        let id = secret("access_key_id");
        let key = secret("secret_access_key");
        let token = secret("session_token");
        match (id, key) {
            (Some((Some(id), _)), Some((Some(key), _))) => Some(AwsKeys {
                access_key_id: id,
                secret_access_key: key,
                session_token: token.and_then(|(t, _)| t),
            }),
            (Some((None, _)), _) | (_, Some((None, _))) => None, // reported already
            (Some(_), None) | (None, Some(_)) => {
                self.problem(
                    path,
                    "give both access_key_id and secret_access_key, or neither",
                );
                None
            }
            (None, None) => match credentials::aws::keys(self.env, profile) {
                Ok(k) => Some(k),
                Err(e) => {
                    self.problem(path, e);
                    None
                }
            },
        }
    }
}
