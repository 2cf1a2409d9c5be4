//! Tests of the secrets check, one block per shape. Keys are assembled from parts so the
//! fixtures are not mistaken for leaked credentials.

use super::*;

fn found(text: &str) -> Vec<(Entity, &str)> {
    crate::guard::matches(scan, text)
}

fn one(text: &str) -> Option<(Entity, &str)> {
    let all = found(text);
    assert!(all.len() <= 1, "{all:?}");
    all.into_iter().next()
}

#[test]
fn aws_key_ids_and_labelled_secrets() {
    let id = "AKIAIOSFODNN7EXAMPLE";
    assert_eq!(one(&format!("key={id}\n")), Some((Entity::AwsKey, id)));
    assert_eq!(
        one(&format!("ASIA{}", "Q".repeat(16))),
        Some((Entity::AwsKey, &*format!("ASIA{}", "Q".repeat(16))))
    );
    assert_eq!(one("AKIAIOSFODNN7EXAMPL"), None);
    assert_eq!(one("AKIAIOSFODNN7EXAMPLEX"), None);
    assert_eq!(one("xAKIAIOSFODNN7EXAMPLE"), None);
    let secret = format!("wJalrXUtnFEMI/K7MDENG/bPxRfiCY{}", "EXAMPLEKEY");
    for text in [
        format!("aws_secret_access_key = {secret}"),
        format!("AWS_SECRET_ACCESS_KEY=\"{secret}\""),
        format!("{{\"aws_secret_access_key\": \"{secret}\"}}"),
    ] {
        assert_eq!(one(&text), Some((Entity::AwsKey, &*secret)), "{text}");
    }
    assert_eq!(one("aws_secret_access_key is required"), None);
}

#[test]
fn api_tokens() {
    let google = format!("AIza{}", "SyA1b2C3d4E5f6G7h8I9j0K-L_m9N8o7P6q");
    assert_eq!(
        one(&format!("key: {google}")),
        Some((Entity::CloudKey, &*google))
    );
    let gh = format!("ghp_{}", "A1b2C3d4E5".repeat(4).split_at(36).0);
    assert_eq!(one(&format!("token {gh}.")), Some((Entity::ApiKey, &*gh)));
    assert_eq!(one("ghp_short"), None);
    let pat = format!("github_pat_{}", "11ABCDEFG0_".repeat(8).split_at(82).0);
    assert_eq!(one(&pat), Some((Entity::ApiKey, &*pat)));
    let slack = format!(
        "xoxb-{}-{}-{}",
        "123456789012", "1234567890123", "AbCdEfGhIjKlMnOpQrStUvWx"
    );
    assert_eq!(one(&slack), Some((Entity::ApiKey, &*slack)));
    let stripe = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
    assert_eq!(one(&stripe), Some((Entity::ApiKey, &*stripe)));
}

#[test]
fn openai_and_anthropic_keys() {
    let openai = format!("sk-{}", "T3BlbkFJ9x8Y7w6V5u4T3s2R1q0PaBcD");
    assert_eq!(
        one(&format!("OPENAI_API_KEY={openai}")),
        Some((Entity::ApiKey, &*openai))
    );
    let proj = format!("sk-proj-{}", "Ab3_dE6-gH9jK2mN5pQ8sT1vW4yZ7");
    assert_eq!(one(&format!("\"{proj}\"")), Some((Entity::ApiKey, &*proj)));
    let ant = format!("sk-ant-api03-{}", "abcdefghijklmnopqrstuvwxyz012345-_AA");
    assert_eq!(one(&ant), Some((Entity::ApiKey, &*ant)));
    // Inside a longer word, or a slug without key-like mixing: not keys.
    assert_eq!(one("a task-T3BlbkFJ9x8Y7w6V5u4T3s2R1q0P is due"), None);
    assert_eq!(one("desk-T3BlbkFJ9x8Y7w6V5u4T3s2R1q0P"), None);
    assert_eq!(one("pip install sk-learn-is-not-a-package-name"), None);
    assert_eq!(one("sk-Ab1"), None);
}

#[test]
fn pem_private_keys() {
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nAKIAIOSFODNN7EXAMPLE\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        one(&format!("here:\n{key}\nbye")),
        Some((Entity::PrivateKey, key))
    );
    let open = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
    assert_eq!(one(open), Some((Entity::PrivateKey, open)));
    assert_eq!(
        one("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"),
        None
    );
    assert_eq!(one("-----BEGIN CERTIFICATE-----"), None);
    // Without an END line a key runs to the cap, cut on a char boundary.
    let long = format!("-----BEGIN PRIVATE KEY-----\n{}", "é".repeat(SECRET_CAP));
    let (_, m) = one(&long).unwrap();
    assert!(m.len() <= SECRET_CAP && m.len() >= SECRET_CAP - 1);
}

#[test]
fn jwts() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    assert_eq!(
        one(&format!("Authorization: Bearer {jwt}\n")),
        Some((Entity::Jwt, jwt))
    );
    assert_eq!(one("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.short"), None);
    assert_eq!(
        one("eyJhbGciOiJIUzI1NiJ9.notjson12345.dozjgNryP4J3jVmNHl0w"),
        None
    );
    assert_eq!(
        one("xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dozjgNryP4J3jVmNHl0w"),
        None
    );
    let big = format!("eyJhbGciOiJIUzI1NiJ9.eyJ{}", "a".repeat(SECRET_CAP));
    assert_eq!(one(&big).map(|(_, m)| m.len()), Some(SECRET_CAP));
}

#[test]
fn several_secrets_come_sorted_and_apart() {
    let text = "AKIAIOSFODNN7EXAMPLE and ghp_A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3 end";
    let all = found(text);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, Entity::AwsKey);
    assert_eq!(all[1].0, Entity::ApiKey);
}
