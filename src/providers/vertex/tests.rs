use std::sync::Arc;

use super::*;
use crate::config::{Origin, Secret, Timeouts, Token};
use crate::providers::canonical::{Message, Part, Role};

fn provider(token: Option<Arc<Token>>) -> (Provider, Origin) {
    let p = Provider {
        name: "vx".into(),
        protocol: crate::providers::Protocol::Vertex,
        vendor: crate::providers::family::find("vertex").unwrap(),
        origin: Some(0),
        base_path: String::new(),
        api_key: None::<Secret>,
        headers: vec![],
        timeouts: Timeouts::default(),
        api_version: None,
        default_max_tokens: 4096,
        region: Some("us-east5".into()),
        project: Some("proj-1".into()),
        aws: None,
        token,
    };
    let mut o = Origin::local();
    o.local = false;
    o.authority = "us-east5-aiplatform.googleapis.com".into();
    (p, o)
}

fn head_of(adapter: &dyn Adapter, p: &Provider, o: &Origin, model: &str, stream: bool) -> String {
    let mut out = Vec::new();
    let h = Head {
        provider: p,
        api_key: None,
        origin: o,
        endpoint: Endpoint::Chat,
        model,
        body: b"{}",
        stream,
        now: 0,
    };
    adapter.write_head(&mut out, &h);
    String::from_utf8(out).unwrap()
}

#[test]
fn each_publisher_has_its_path_and_the_token_goes_as_a_bearer() {
    let (p, o) = provider(Some(Arc::new(Token::fixed("ya29.t"))));
    let gem = Vertex.for_model("gemini-2.5-pro").unwrap();
    let h = head_of(gem, &p, &o, "gemini-2.5-pro", true);
    assert!(h.starts_with("POST /v1/projects/proj-1/locations/us-east5/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse HTTP/1.1\r\n"), "{h}");
    assert!(
        h.contains("\r\nauthorization: Bearer ya29.t\r\n\r\n"),
        "{h}"
    );
    let cl = Vertex.for_model("claude-sonnet-4-5@20250929").unwrap();
    let h = head_of(cl, &p, &o, "claude-sonnet-4-5@20250929", false);
    assert!(h.starts_with("POST /v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5%4020250929:rawPredict "), "{h}");
    assert!(gem.ready(&p).is_ok());
}

#[test]
fn no_token_yet_is_a_clear_refusal() {
    let t = Arc::new(Token::default());
    t.fail("the token endpoint answered HTTP 400: invalid_grant".into());
    let (p, _) = provider(Some(t));
    let e = VertexGemini.ready(&p).unwrap_err();
    assert_eq!(e.kind, Kind::UpstreamAuth);
    assert!(
        e.message.contains("no Google access token yet") && e.message.contains("invalid_grant")
    );
}

#[test]
fn claude_bodies_carry_the_vertex_version_instead_of_the_model() {
    let r = ChatRequest {
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::Text("hi".into())],
        }],
        ..ChatRequest::default()
    };
    let stamp = Stamp {
        model: "claude-x",
        created: 0,
        default_max_tokens: 100,
        id: "",
    };
    let mut out = b"prefix".to_vec();
    VertexAnthropic.encode_request(&r, &stamp, &mut out, &mut Vec::new());
    let v: serde_json::Value = serde_json::from_slice(&out[6..]).unwrap();
    assert_eq!(v["anthropic_version"], ANTHROPIC_VERSION);
    assert!(v.get("model").is_none());
    assert_eq!(v["max_tokens"], 100);
}

#[test]
fn predict_embeddings_round_trip() {
    let r = EmbedRequest {
        input: vec!["a".into(), "b".into()],
        dimensions: Some(8),
        ..EmbedRequest::default()
    };
    let mut out = Vec::new();
    embed::encode_request(&r, &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["instances"][1]["content"], "b");
    assert_eq!(v["parameters"]["outputDimensionality"], 8);
    let mut b = br#"{"predictions":[{"embeddings":{"values":[1,0.5],"statistics":{"token_count":2}}},{"embeddings":{"values":[0],"statistics":{"token_count":1.0}}}]}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let e = embed::decode_response(&v).unwrap();
    assert_eq!(e.vectors, vec![vec![1.0, 0.5], vec![0.0]]);
    assert_eq!(e.input_tokens, 3);
}
