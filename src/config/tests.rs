use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "LOCAL_API_KEY" => Some("sk-local".into()),
        "TEAM_A_KEY" => Some("sg-a".into()),
        _ => None,
    }
}

const GOOD: &str = r#"
server:
  listen: 127.0.0.1:8080
  admin_listen: 127.0.0.1:9090
  shards: 2
  max_body_bytes: 4194304
providers:
  local:
    protocol: openai
    base_url: http://127.0.0.1:9001/v1
    api_key: { env: LOCAL_API_KEY }
models:
  gpt-4o-mini:
    targets:
      - { provider: local, model: gpt-4o-mini }
keys:
  - name: team-a
    key: { env: TEAM_A_KEY }
    models: [gpt-4o-mini]
"#;

#[test]
fn the_documented_shape_loads() {
    let s = load_str(GOOD, &env).unwrap();
    assert_eq!(s.server.shards, Shards::Count(2));
    assert_eq!(s.providers[0].base_path, "/v1");
    assert_eq!(
        s.providers[0].api_key.as_ref().unwrap().expose(),
        "sk-local"
    );
    assert_eq!(s.origins[0].authority, "127.0.0.1:9001");
    assert_eq!(
        s.model("gpt-4o-mini").unwrap().1.targets[0].model,
        "gpt-4o-mini"
    );
    assert_eq!(s.keys.len(), 1);
    // Secrets never show in Debug output.
    assert!(!format!("{s:?}").contains("sk-local"));
}

#[test]
fn embedded_default_and_examples_load() {
    load_str(EMBEDDED_DEFAULT, &env).unwrap();
    let all = |name: &str| Some(format!("secret-of-{name}"));
    for f in [
        "examples/openai.yaml",
        "examples/self-hosted.yaml",
        "examples/multi-provider.yaml",
    ] {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + f)
            .unwrap();
        let s = load_str(&text, &all).unwrap_or_else(|p| panic!("{f}: {p}"));
        assert!(!s.models.is_empty());
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let bad = r#"
server:
  listen: nowhere
  shards: 0
  colour: blue
providers:
  local:
    protocol: opnai
    base_url: http://127.0.0.1:9001/v1
  other:
    protocol: openai
    base_url: ftp://x
    api_key: { env: MISSING_KEY }
models:
  gpt-4o:
    targets:
      - { provider: local, model: a }
      - { provider: opnai, model: b }
  empty:
    targets: []
keys:
  - name: k
    key: { env: TEAM_A_KEY }
    models: [gpt-5]
"#;
    let p = load_str(bad, &env).unwrap_err().0;
    let expect = [
        "server.listen: \"nowhere\" is not an address",
        "server.shards: expected \"auto\" or an integer",
        "server.colour: unknown field",
        "providers.local.protocol: unknown protocol \"opnai\"",
        "providers.other.api_key: environment variable MISSING_KEY is not set",
        "providers.other.base_url: \"ftp://x\": must start with http:// or https://",
        "models.gpt-4o.targets[1].provider: no provider named \"opnai\"",
        "models.empty.targets: needs at least one target",
        "keys[0].models[0]: no model named \"gpt-5\"",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn urls_split_into_origin_and_path() {
    use super::parse::split_url;
    assert_eq!(
        split_url("https://api.openai.com/v1/").unwrap(),
        (true, "api.openai.com".into(), 443, "/v1".into())
    );
    assert_eq!(
        split_url("http://[::1]:8000").unwrap(),
        (false, "::1".into(), 8000, "".into())
    );
    assert!(split_url("http://h:99999").is_err());
    assert!(split_url("http://h/v1?x=1").is_err());
}

#[test]
fn duplicate_keys_and_empty_files() {
    let dup = "keys:\n  - { name: a, key: { env: TEAM_A_KEY } }\n  - { name: b, key: { env: TEAM_A_KEY } }\n";
    let p = load_str(dup, &env).unwrap_err().0;
    assert!(
        p[0].starts_with("keys[1]: key \"b\" has the same secret"),
        "{p:?}"
    );
    let s = load_str("", &env).unwrap();
    assert!(s.keys.is_empty() && s.models.is_empty());
}

#[test]
fn runtime_knobs() {
    let s = load_str(
        "server:\n  cpus: [1, 0]\n  io_uring_entries: 4096\n  sqpoll_idle_ms: 2\n",
        &env,
    )
    .unwrap();
    assert_eq!(s.server.cpus, Some(vec![1, 0]));
    assert_eq!(s.server.io_uring_entries, 4096);
    assert_eq!(s.server.sqpoll_idle_ms, Some(2));
    let p = load_str("server:\n  cpus: []\n  io_uring_entries: 1000\n", &env)
        .unwrap_err()
        .0;
    assert!(p.iter().any(|l| l.starts_with("server.cpus:")), "{p:?}");
    assert!(
        p.iter()
            .any(|l| l.starts_with("server.io_uring_entries: must be a power of two")),
        "{p:?}"
    );
}

#[test]
fn family_members_need_only_their_key() {
    let text = r#"
providers:
  claude:
    protocol: anthropic
    api_key: { env: LOCAL_API_KEY }
    anthropic_beta: [prompt-caching-2024-07-31, output-128k-2025-02-19]
    default_max_tokens: 8192
  groq:
    protocol: groq
    api_key: { env: LOCAL_API_KEY }
  azure:
    protocol: azure
    base_url: https://res.openai.azure.com
    api_key: { env: LOCAL_API_KEY }
  ollama:
    protocol: ollama
  oa:
    protocol: openai
    api_key: { env: LOCAL_API_KEY }
    organization: org-1
    project: proj-1
"#;
    let s = load_str(text, &env).unwrap();
    let p = |name: &str| s.providers.iter().find(|p| p.name == name).unwrap();
    let claude = p("claude");
    assert_eq!(claude.protocol, Protocol::Anthropic);
    assert_eq!(
        s.origins[claude.origin.unwrap()].authority,
        "api.anthropic.com"
    );
    assert!(
        claude
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into()))
    );
    assert!(claude.headers.contains(&(
        "anthropic-beta".into(),
        "prompt-caching-2024-07-31,output-128k-2025-02-19".into()
    )));
    assert_eq!(claude.default_max_tokens, 8192);
    let groq = p("groq");
    assert_eq!(
        (groq.protocol, groq.vendor.name),
        (Protocol::OpenAi, "groq")
    );
    assert_eq!(s.origins[groq.origin.unwrap()].authority, "api.groq.com");
    assert_eq!(groq.base_path, "/openai/v1");
    assert_eq!(p("azure").api_version.as_deref(), Some("2024-10-21"));
    assert!(p("ollama").api_key.is_none());
    assert!(
        p("oa")
            .headers
            .contains(&("openai-organization".into(), "org-1".into()))
    );
    assert!(
        p("oa")
            .headers
            .contains(&("openai-project".into(), "proj-1".into()))
    );
}

#[test]
fn protocol_settings_belong_to_their_protocol() {
    let text = r#"
providers:
  a:
    protocol: openai
    base_url: http://127.0.0.1:1/v1
    anthropic_version: "2023-06-01"
  b:
    protocol: groq
  c:
    protocol: anthropic
    api_key: { env: LOCAL_API_KEY }
    api_version: "2024-10-21"
  d:
    protocol: claude
"#;
    let p = load_str(text, &env).unwrap_err().0;
    for e in [
        "providers.a.anthropic_version: only for protocol anthropic, not openai",
        "providers.b.api_key: missing: protocol groq needs an API key",
        "providers.c.api_version: only for protocol azure, not anthropic",
        "providers.d.protocol: unknown protocol \"claude\" (one of: openai, azure, mistral, groq",
    ] {
        assert!(
            p.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}
