//! The YAML walker behind [`super::load_str`]. It keeps going after a problem so that one run
//! of `shardgate check` lists everything wrong with a file, each line prefixed by its path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::wire;
use super::{
    AccessLog, ConfigKey, Origin, Problems, Provider, Secret, Server, Shards, Snapshot,
    StoreConfig, Timeouts,
};
use crate::providers::family;

pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) struct Walker<'e> {
    pub(super) problems: Vec<String>,
    pub(super) env: Env<'e>,
}

pub(super) fn parse(text: &str, env: Env<'_>) -> Result<Snapshot, Problems> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text)
        .map_err(|e| Problems(vec![format!("<yaml>: {e}")]))?;
    let empty = Yaml::Hash(Hash::new());
    let root = docs.first().unwrap_or(&empty);
    let mut w = Walker {
        problems: Vec::new(),
        env,
    };
    let snapshot = w.snapshot(root);
    if w.problems.is_empty() {
        Ok(snapshot)
    } else {
        Err(Problems(w.problems))
    }
}

pub(super) fn type_name(y: &Yaml) -> &'static str {
    match y {
        Yaml::Real(_) => "a number",
        Yaml::Integer(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a mapping",
        Yaml::Alias(_) => "an alias",
        Yaml::Null => "null",
        Yaml::BadValue => "an invalid value",
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Walker<'_> {
    pub(super) fn problem(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{path}: {msg}"));
    }

    /// A mapping with only `allowed` keys; unknown keys are problems.
    pub(super) fn mapping<'y>(
        &mut self,
        y: &'y Yaml,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'y Hash> {
        let Yaml::Hash(h) = y else {
            let shown = if path.is_empty() { "<root>" } else { path };
            self.problem(
                shown,
                format_args!("expected a mapping, found {}", type_name(y)),
            );
            return None;
        };
        for k in h.keys() {
            match k.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => self.problem(
                    &join(path, k),
                    format_args!("unknown field (expected one of: {})", allowed.join(", ")),
                ),
                None => self.problem(
                    path,
                    format_args!("keys must be strings, found {}", type_name(k)),
                ),
            }
        }
        Some(h)
    }

    pub(super) fn string(&mut self, y: &Yaml, path: &str) -> Option<String> {
        match y {
            Yaml::String(s) if !s.is_empty() => Some(s.clone()),
            Yaml::String(_) => {
                self.problem(path, "must not be empty");
                None
            }
            other => {
                self.problem(
                    path,
                    format_args!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string that is also a valid [`wire::name`].
    pub(super) fn name(&mut self, y: &Yaml, path: &str) -> Option<String> {
        let s = self.string(y, path)?;
        match wire::name(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    pub(super) fn uint(&mut self, y: &Yaml, path: &str, min: u64) -> Option<u64> {
        match y {
            Yaml::Integer(i) if *i >= min as i64 => Some(*i as u64),
            Yaml::Integer(i) => {
                self.problem(path, format_args!("must be at least {min}, found {i}"));
                None
            }
            other => {
                self.problem(
                    path,
                    format_args!("expected an integer, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(super) fn millis(
        &mut self,
        h: &Hash,
        key: &str,
        path: &str,
        default: Duration,
    ) -> Duration {
        match get(h, key) {
            Some(y) => self
                .uint(y, &join(path, key), 1)
                .map(Duration::from_millis)
                .unwrap_or(default),
            None => default,
        }
    }

    fn addr(&mut self, y: &Yaml, path: &str) -> Option<SocketAddr> {
        let s = self.string(y, path)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    path,
                    format_args!("{s:?} is not an address like 127.0.0.1:8080"),
                );
                None
            }
        }
    }

    /// `{ env: NAME }` or `{ file: PATH }`, trimmed and vetted by [`wire::secret`].
    pub(super) fn secret(&mut self, y: &Yaml, path: &str) -> Option<Secret> {
        let h = self.mapping(y, path, &["env", "file"])?;
        let (raw, origin) = match (get(h, "env"), get(h, "file")) {
            (Some(name), None) => {
                let name = self.string(name, &join(path, "env"))?;
                let Some(v) = (self.env)(&name) else {
                    self.problem(path, format_args!("environment variable {name} is not set"));
                    return None;
                };
                (v.into_bytes(), format!("env {name}"))
            }
            (None, Some(file)) => {
                let file = self.string(file, &join(path, "file"))?;
                match std::fs::read(&file) {
                    Ok(v) => (v, format!("file {file}")),
                    Err(e) => {
                        self.problem(path, format_args!("cannot read secret file {file}: {e}"));
                        return None;
                    }
                }
            }
            _ => {
                self.problem(
                    path,
                    "expected exactly one of { env: NAME } or { file: PATH }",
                );
                return None;
            }
        };
        match wire::secret(&raw) {
            Ok(v) => Some(Secret::new(v, origin)),
            Err(flaw) => {
                self.problem(path, format_args!("the value from {origin} {flaw}"));
                None
            }
        }
    }

    fn snapshot(&mut self, root: &Yaml) -> Snapshot {
        let empty = Hash::new();
        let h = self
            .mapping(
                root,
                "",
                &[
                    "server",
                    "providers",
                    "models",
                    "keys",
                    "store",
                    "end_users",
                    "cache",
                    "guardrails",
                    "cluster",
                ],
            )
            .unwrap_or(&empty);
        let server = self.server(get(h, "server"));
        let mut origins = Vec::new();
        let providers = self.providers(get(h, "providers"), &mut origins);
        let guardrails = self.guardrails(get(h, "guardrails"), &mut origins);
        let (models, model_index) = self.models(get(h, "models"), &providers, &guardrails);
        for m in &models {
            let Some(sem) = m.cache.as_ref().and_then(|c| c.semantic.as_ref()) else {
                continue;
            };
            if !model_index.contains_key(&sem.embeddings) {
                self.problem(
                    &format!("models.{}.cache.semantic.embeddings", m.alias),
                    format_args!("no model named {:?}", sem.embeddings),
                );
            }
        }
        let keys = self.keys(get(h, "keys"), &model_index);
        let store = self.store(get(h, "store"));
        let end_user_limits = get(h, "end_users")
            .map(|y| self.end_user_limits(y))
            .unwrap_or_default();
        let cache = get(h, "cache")
            .map(|y| self.cache_config(y))
            .unwrap_or_default();
        let cluster = get(h, "cluster").and_then(|y| self.cluster(y));
        Snapshot {
            server,
            providers,
            origins,
            models,
            model_index,
            keys,
            store,
            labels: Default::default(),
            alias_limits: Vec::new(),
            end_user_limits,
            cache,
            guardrails,
            cluster,
        }
    }

    fn server(&mut self, y: Option<&Yaml>) -> Server {
        let mut s = Server {
            listen: "127.0.0.1:8080".parse().unwrap(),
            admin_listen: Some("127.0.0.1:9090".parse().unwrap()),
            shards: Shards::Auto,
            pin: true,
            cpus: None,
            io_uring_entries: 1024,
            sqpoll_idle_ms: None,
            max_body_bytes: 4 << 20,
            max_header_bytes: 32 << 10,
            keepalive_timeout: Duration::from_secs(75),
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_inflight: 4_096,
            max_response_bytes: 64 << 20,
            max_event_bytes: 1 << 20,
            access_log: AccessLog::Stdout,
            master_key: None,
            metrics_auth: false,
            reject_unknown_price: true,
            ledger_retention_days: 30,
            ledger: None,
            alert_webhook: None,
            budget_offset_min: 0,
        };
        let Some(y) = y else { return s };
        let allowed = [
            "listen",
            "admin_listen",
            "shards",
            "pin",
            "cpus",
            "io_uring_entries",
            "sqpoll_idle_ms",
            "max_body_bytes",
            "max_header_bytes",
            "keepalive_timeout_ms",
            "header_timeout_ms",
            "drain_timeout_ms",
            "write_timeout_ms",
            "max_connections",
            "max_inflight",
            "max_response_bytes",
            "max_event_bytes",
            "access_log",
            "master_key",
            "metrics_auth",
            "on_unknown_price",
            "ledger_retention_days",
            "ledger",
            "alert_webhook",
            "budget_timezone",
        ];
        let Some(h) = self.mapping(y, "server", &allowed) else {
            return s;
        };
        if let Some(a) = get(h, "listen").and_then(|y| self.addr(y, "server.listen")) {
            s.listen = a;
        }
        match get(h, "admin_listen") {
            None => {}
            Some(Yaml::Null) => s.admin_listen = None,
            Some(Yaml::String(v)) if v == "off" => s.admin_listen = None,
            Some(y) => s.admin_listen = self.addr(y, "server.admin_listen").or(s.admin_listen),
        }
        match get(h, "shards") {
            None => {}
            Some(Yaml::String(v)) if v == "auto" => s.shards = Shards::Auto,
            Some(Yaml::Integer(n)) if (1..=1024).contains(n) => {
                s.shards = Shards::Count(*n as usize)
            }
            Some(_) => self.problem(
                "server.shards",
                "expected \"auto\" or an integer from 1 to 1024",
            ),
        }
        match get(h, "pin") {
            None => {}
            Some(Yaml::Boolean(b)) => s.pin = *b,
            Some(other) => self.problem(
                "server.pin",
                format_args!("expected a boolean, found {}", type_name(other)),
            ),
        }
        match get(h, "cpus") {
            None => {}
            Some(Yaml::Array(list)) if !list.is_empty() => {
                let cpus: Vec<usize> = list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        self.uint(c, &format!("server.cpus[{i}]"), 0)
                            .map(|c| c as usize)
                    })
                    .collect();
                if cpus.len() == list.len() {
                    s.cpus = Some(cpus);
                }
            }
            Some(_) => self.problem("server.cpus", "expected a non-empty list of CPU numbers"),
        }
        if let Some(n) =
            get(h, "io_uring_entries").and_then(|y| self.uint(y, "server.io_uring_entries", 8))
        {
            if n.is_power_of_two() && n <= 32768 {
                s.io_uring_entries = n as u32;
            } else {
                self.problem(
                    "server.io_uring_entries",
                    "must be a power of two from 8 to 32768",
                );
            }
        }
        if let Some(n) =
            get(h, "sqpoll_idle_ms").and_then(|y| self.uint(y, "server.sqpoll_idle_ms", 1))
        {
            s.sqpoll_idle_ms = Some(n.min(60_000) as u32);
        }
        if let Some(n) =
            get(h, "max_body_bytes").and_then(|y| self.uint(y, "server.max_body_bytes", 1))
        {
            s.max_body_bytes = n as usize;
        }
        if let Some(n) =
            get(h, "max_header_bytes").and_then(|y| self.uint(y, "server.max_header_bytes", 1024))
        {
            s.max_header_bytes = n as usize;
        }
        s.keepalive_timeout = self.millis(h, "keepalive_timeout_ms", "server", s.keepalive_timeout);
        s.header_timeout = self.millis(h, "header_timeout_ms", "server", s.header_timeout);
        s.drain_timeout = self.millis(h, "drain_timeout_ms", "server", s.drain_timeout);
        s.write_timeout = self.millis(h, "write_timeout_ms", "server", s.write_timeout);
        for (name, min, field) in [
            ("max_connections", 1, &mut s.max_connections),
            ("max_inflight", 1, &mut s.max_inflight),
            ("max_response_bytes", 1024, &mut s.max_response_bytes),
            ("max_event_bytes", 1024, &mut s.max_event_bytes),
        ] {
            let path = format!("server.{name}");
            if let Some(n) = get(h, name).and_then(|y| self.uint(y, &path, min)) {
                *field = n as usize;
            }
        }
        if let Some(y) = get(h, "master_key") {
            s.master_key = self.secret(y, "server.master_key");
            if s.master_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
                self.problem("server.master_key", "must be at least 16 characters");
            }
        }
        match get(h, "metrics_auth") {
            None => {}
            Some(Yaml::String(v)) if v == "none" => s.metrics_auth = false,
            Some(Yaml::String(v)) if v == "master_key" => s.metrics_auth = true,
            Some(_) => self.problem("server.metrics_auth", "expected none or master_key"),
        }
        match get(h, "on_unknown_price") {
            None => {}
            Some(Yaml::String(v)) if v == "reject" => s.reject_unknown_price = true,
            Some(Yaml::String(v)) if v == "allow" => s.reject_unknown_price = false,
            Some(_) => self.problem("server.on_unknown_price", "expected reject or allow"),
        }
        if let Some(y) = get(h, "alert_webhook")
            && let Some(url) = self.string(y, "server.alert_webhook")
        {
            if url.starts_with("http://") && !url.contains(char::is_whitespace) {
                s.alert_webhook = Some(url);
            } else {
                self.problem("server.alert_webhook", "expected an http:// URL");
            }
        }
        if let Some(y) = get(h, "budget_timezone")
            && let Some(tz) = self.string(y, "server.budget_timezone")
        {
            match utc_offset(&tz) {
                Some(min) => s.budget_offset_min = min,
                None => self.problem(
                    "server.budget_timezone",
                    format_args!(
                        "expected UTC or an offset such as +05:30 or -08:00, found {tz:?}"
                    ),
                ),
            }
        }
        match get(h, "ledger") {
            None => {}
            Some(Yaml::Boolean(b)) => s.ledger = Some(*b),
            Some(Yaml::String(v)) if v == "on" => s.ledger = Some(true),
            Some(Yaml::String(v)) if v == "off" => s.ledger = Some(false),
            Some(_) => self.problem("server.ledger", "expected on or off"),
        }
        if let Some(n) = get(h, "ledger_retention_days")
            .and_then(|y| self.uint(y, "server.ledger_retention_days", 1))
        {
            s.ledger_retention_days = n.min(36_500) as u32;
        }
        if s.metrics_auth && s.master_key.is_none() {
            self.problem("server.metrics_auth", "master_key needs server.master_key");
        }
        match get(h, "access_log") {
            None => {}
            Some(Yaml::String(v)) if v == "stdout" => s.access_log = AccessLog::Stdout,
            Some(Yaml::String(v)) if v == "stderr" => s.access_log = AccessLog::Stderr,
            Some(Yaml::String(v)) if v == "off" => s.access_log = AccessLog::Off,
            Some(y @ Yaml::Hash(_)) => {
                if let Some(f) = self
                    .mapping(y, "server.access_log", &["file"])
                    .and_then(|m| get(m, "file"))
                    && let Some(p) = self.string(f, "server.access_log.file")
                {
                    s.access_log = AccessLog::File(PathBuf::from(p));
                }
            }
            Some(_) => self.problem(
                "server.access_log",
                "expected stdout, stderr, off or { file: PATH }",
            ),
        }
        s
    }

    fn providers(&mut self, y: Option<&Yaml>, origins: &mut Vec<Origin>) -> Vec<Provider> {
        let mut out = Vec::new();
        let Some(y) = y else { return out };
        let Yaml::Hash(h) = y else {
            self.problem(
                "providers",
                format_args!(
                    "expected a mapping of provider names, found {}",
                    type_name(y)
                ),
            );
            return out;
        };
        for (name, body) in h {
            let Some(name) = name.as_str() else {
                self.problem("providers", "provider names must be strings");
                continue;
            };
            let path = format!("providers.{}", wire::shown(name));
            if let Err(e) = wire::name(name) {
                self.problem(&path, e);
            }
            if let Some(p) = self.provider(name, body, &path, origins) {
                out.push(p);
            }
        }
        out
    }

    fn provider(
        &mut self,
        name: &str,
        y: &Yaml,
        path: &str,
        origins: &mut Vec<Origin>,
    ) -> Option<Provider> {
        let allowed = [
            "protocol", "base_url", "api_key", "headers", "timeouts", "ca_file", "pool",
        ];
        let allowed: Vec<&str> = allowed.into_iter().chain(family::settings()).collect();
        let h = self.mapping(y, path, &allowed)?;
        let vendor = match get(h, "protocol") {
            None => {
                let names = family::names();
                self.problem(
                    &join(path, "protocol"),
                    format_args!("missing (one of: {names})"),
                );
                None
            }
            Some(p) => {
                let s = self.string(p, &join(path, "protocol"))?;
                let found = family::find(&s);
                if found.is_none() {
                    let names = family::names();
                    self.problem(
                        &join(path, "protocol"),
                        format_args!("unknown protocol {s:?} (one of: {names})"),
                    );
                }
                found
            }
        };
        let api_key = get(h, "api_key").and_then(|y| self.secret(y, &join(path, "api_key")));
        let mut headers = Vec::new();
        if let Some(y) = get(h, "headers") {
            let hp = join(path, "headers");
            if let Yaml::Hash(hh) = y {
                for (k, v) in hh {
                    let Some(k) = k.as_str() else {
                        self.problem(&hp, "header names must be strings");
                        continue;
                    };
                    let kp = join(&hp, &wire::shown(k));
                    match v.as_str().map(|v| (v, wire::header(k, v))) {
                        Some((v, Ok(()))) => headers.push((k.to_owned(), v.to_owned())),
                        Some((_, Err(e))) => self.problem(&kp, e),
                        None => self.problem(
                            &kp,
                            format_args!("expected a string, found {}", type_name(v)),
                        ),
                    }
                }
            } else {
                self.problem(
                    &hp,
                    format_args!("expected a mapping, found {}", type_name(y)),
                );
            }
        }
        let mut timeouts = Timeouts::default();
        if let Some(y) = get(h, "timeouts") {
            let tp = join(path, "timeouts");
            if let Some(t) = self.mapping(y, &tp, &["connect_ms", "first_byte_ms", "total_ms"]) {
                timeouts.connect = self.millis(t, "connect_ms", &tp, timeouts.connect);
                timeouts.first_byte = self.millis(t, "first_byte_ms", &tp, timeouts.first_byte);
                timeouts.total = self.millis(t, "total_ms", &tp, timeouts.total);
            }
        }
        let ca_file = get(h, "ca_file")
            .and_then(|y| self.string(y, &join(path, "ca_file")))
            .map(PathBuf::from);
        let (mut max_idle, mut idle_timeout) = (256usize, Duration::from_secs(60));
        if let Some(y) = get(h, "pool") {
            let pp = join(path, "pool");
            if let Some(ph) = self.mapping(y, &pp, &["max_idle", "idle_timeout_ms"]) {
                if let Some(n) =
                    get(ph, "max_idle").and_then(|y| self.uint(y, &join(&pp, "max_idle"), 0))
                {
                    max_idle = n as usize;
                }
                idle_timeout = self.millis(ph, "idle_timeout_ms", &pp, idle_timeout);
            }
        }
        let vendor = vendor?;
        let protocol = vendor.protocol;
        let settings = self.protocol_settings(h, path, vendor, &mut headers);
        if vendor.needs_key && api_key.is_none() {
            self.problem(
                &join(path, "api_key"),
                format_args!("missing: protocol {} needs an API key", vendor.name),
            );
        }
        let local = protocol.adapter().local();
        let (origin, base_path) = match (local, get(h, "base_url")) {
            (true, None) => {
                let o = Origin::local();
                let idx = match origins.iter().position(|x| *x == o) {
                    Some(i) => i,
                    None => {
                        origins.push(o);
                        origins.len() - 1
                    }
                };
                (Some(idx), String::new())
            }
            (true, Some(_)) => {
                self.problem(
                    &join(path, "base_url"),
                    "the built-in mock protocol takes no base_url",
                );
                return None;
            }
            (false, None) => match (
                settings.as_ref().map(|s| s.base_url.as_deref()),
                vendor.base_url,
            ) {
                (Some(Some(u)), _) => self.origin(
                    u,
                    &join(path, "base_url"),
                    ca_file,
                    max_idle,
                    idle_timeout,
                    origins,
                )?,
                (None, Some(u)) if !u.contains("{region}") => self.origin(
                    u,
                    &join(path, "base_url"),
                    ca_file,
                    max_idle,
                    idle_timeout,
                    origins,
                )?,
                // The settings' problem says what the URL is missing.
                (None, Some(_)) => return None,
                _ => {
                    self.problem(&join(path, "base_url"), "missing");
                    return None;
                }
            },
            (false, Some(y)) => {
                let u = self.string(y, &join(path, "base_url"))?;
                self.origin(
                    &u,
                    &join(path, "base_url"),
                    ca_file,
                    max_idle,
                    idle_timeout,
                    origins,
                )?
            }
        };
        let settings = settings?;
        Some(Provider {
            name: name.to_owned(),
            protocol,
            vendor,
            origin,
            base_path,
            api_key,
            headers,
            timeouts,
            api_version: settings.api_version,
            default_max_tokens: settings.default_max_tokens,
            region: settings.region,
            project: settings.project,
            aws: settings.aws,
            token: settings.token,
        })
    }

    /// The origin of `url` (the value at `field`), added to `origins` unless there already,
    /// and the URL's path.
    pub(super) fn origin(
        &mut self,
        url: &str,
        field: &str,
        ca_file: Option<PathBuf>,
        max_idle: usize,
        idle_timeout: Duration,
        origins: &mut Vec<Origin>,
    ) -> Option<(Option<usize>, String)> {
        if let Err(e) = wire::base_url(url) {
            self.problem(field, e);
            return None;
        }
        let (tls, host, port, base_path) = match wire::split_url(url) {
            Ok(parts) => parts,
            Err(e) => {
                self.problem(field, format_args!("{url:?}: {e}"));
                return None;
            }
        };
        let default_port = if tls { 443 } else { 80 };
        let authority = if port == default_port {
            host.clone()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let origin = Origin {
            tls,
            host,
            port,
            authority,
            ca_file,
            max_idle,
            idle_timeout,
            local: false,
        };
        let idx = match origins.iter().position(|o| *o == origin) {
            Some(i) => i,
            None => {
                origins.push(origin);
                origins.len() - 1
            }
        };
        Some((Some(idx), base_path))
    }

    fn keys(&mut self, y: Option<&Yaml>, models: &HashMap<String, usize>) -> Vec<ConfigKey> {
        let mut keys: Vec<ConfigKey> = Vec::new();
        let list = match y {
            None | Some(Yaml::Null) => return keys,
            Some(Yaml::Array(list)) => list,
            Some(other) => {
                self.problem(
                    "keys",
                    format_args!("expected a list, found {}", type_name(other)),
                );
                return keys;
            }
        };
        for (i, k) in list.iter().enumerate() {
            let path = format!("keys[{i}]");
            let mut fields = vec!["name", "key", "models"];
            fields.extend(super::limits::KEY_FIELDS);
            let Some(h) = self.mapping(k, &path, &fields) else {
                continue;
            };
            let limits = self.key_limits(h, &path, models);
            let name = match get(h, "name") {
                Some(n) => self.name(n, &join(&path, "name")),
                None => {
                    self.problem(&join(&path, "name"), "missing");
                    None
                }
            };
            let secret = match get(h, "key") {
                Some(s) => self.secret(s, &join(&path, "key")),
                None => {
                    self.problem(&join(&path, "key"), "missing");
                    None
                }
            };
            let allowed = match get(h, "models") {
                None => None,
                Some(Yaml::Array(list)) => {
                    let mut names = Vec::new();
                    for (j, m) in list.iter().enumerate() {
                        let mp = format!("{path}.models[{j}]");
                        if let Some(alias) = self.string(m, &mp) {
                            if models.contains_key(&alias) {
                                names.push(alias);
                            } else {
                                self.problem(&mp, format_args!("no model named {alias:?}"));
                            }
                        }
                    }
                    Some(names)
                }
                Some(other) => {
                    self.problem(
                        &join(&path, "models"),
                        format_args!("expected a list, found {}", type_name(other)),
                    );
                    None
                }
            };
            let (Some(name), Some(secret)) = (name, secret) else {
                continue;
            };
            let hash = crate::auth::digest(secret.expose().as_bytes());
            if keys.iter().any(|k| k.name == name) {
                self.problem(&path, format_args!("duplicate key name {name:?}"));
            } else if keys.iter().any(|k| k.hash == hash) {
                self.problem(
                    &path,
                    format_args!("key {name:?} has the same secret as another key"),
                );
            } else {
                keys.push(ConfigKey {
                    name,
                    hash,
                    models: allowed,
                    limits,
                });
            }
        }
        keys
    }

    fn store(&mut self, y: Option<&Yaml>) -> StoreConfig {
        let Some(y) = y else {
            return StoreConfig::Memory;
        };
        let Some(h) = self.mapping(y, "store", &["path", "memory", "postgres"]) else {
            return StoreConfig::Memory;
        };
        match (get(h, "path"), get(h, "memory"), get(h, "postgres")) {
            (Some(p), None, None) => self
                .string(p, "store.path")
                .filter(|p| !p.is_empty())
                .map_or(StoreConfig::Memory, |p| StoreConfig::File(PathBuf::from(p))),
            (None, Some(Yaml::Boolean(true)), None) => StoreConfig::Memory,
            (None, None, Some(pg)) => self.postgres(pg).unwrap_or(StoreConfig::Memory),
            _ => {
                self.problem(
                    "store",
                    "expected { path: FILE }, { memory: true } or { postgres: { url: ... } }",
                );
                StoreConfig::Memory
            }
        }
    }

    /// `store.postgres`: `url` (a literal string or `{ env: NAME }` / `{ file: PATH }`),
    /// `spool` (a directory), `spool_max_mb`.
    fn postgres(&mut self, y: &Yaml) -> Option<StoreConfig> {
        let h = self.mapping(y, "store.postgres", &["url", "spool", "spool_max_mb"])?;
        let url = match get(h, "url") {
            Some(Yaml::String(u)) => self
                .string(&Yaml::String(u.clone()), "store.postgres.url")
                .map(|u| Secret::new(u, "store.postgres.url".into())),
            Some(y) => self.secret(y, "store.postgres.url"),
            None => {
                self.problem("store.postgres.url", "is required");
                None
            }
        };
        let spool = match get(h, "spool") {
            Some(y) => self.string(y, "store.postgres.spool").map(PathBuf::from),
            None => Some(PathBuf::from("shardgate-spool")),
        };
        let spool_max_mb = match get(h, "spool_max_mb") {
            Some(y) => self.uint(y, "store.postgres.spool_max_mb", 1)?,
            None => 256,
        };
        Some(StoreConfig::Postgres(crate::config::PostgresStore {
            url: url?,
            spool: spool?,
            spool_max_mb,
        }))
    }
}

/// `UTC`, `Z` or `±HH:MM` as minutes from UTC (within ±14 hours).
fn utc_offset(tz: &str) -> Option<i32> {
    if matches!(tz, "UTC" | "Z" | "utc") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

pub(super) fn get<'y>(h: &'y Hash, key: &str) -> Option<&'y Yaml> {
    h.get(&Yaml::String(key.to_owned()))
}
