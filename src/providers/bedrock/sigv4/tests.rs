//! Unit tests of `providers::bedrock::sigv4`: AWS's published SigV4 test suite (credentials
//! `AKIDEXAMPLE`, 2015-08-30T12:36:00Z, us-east-1, service `service`) and the clock format.

use super::*;

const CREDS: Credentials<'static> = Credentials {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token: None,
};
const SCOPE: Scope<'static> = Scope {
    amz_date: "20150830T123600Z",
    region: "us-east-1",
    service: "service",
};
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", "20150830T123600Z");

/// Checks one vector: the canonical request, then the signature and header built on it.
fn check(method: &str, path: &str, query: &str, headers: &[(&str, &str)], creq: &str, sig: &str) {
    check_with(method, path, query, headers, EMPTY_SHA256, creq, sig)
}

fn check_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    creq: &str,
    sig: &str,
) {
    let r = Request {
        method,
        path,
        query,
        headers,
        payload_hash,
    };
    let (got, signed) = canonical_request(&r);
    assert_eq!(got, creq, "canonical request of {method} {path}?{query}");
    assert_eq!(
        signature(
            CREDS.secret_access_key,
            &SCOPE,
            &string_to_sign(&SCOPE, &got)
        ),
        sig
    );
    assert_eq!(
        authorization(&CREDS, &SCOPE, &r),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed}, Signature={sig}"
        )
    );
}

const VANILLA_HEADERS: &str =
    "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n";

#[test]
fn get_vanilla_and_its_string_to_sign() {
    let creq = format!("GET\n/\n\n{VANILLA_HEADERS}{EMPTY_SHA256}");
    check(
        "GET",
        "/",
        "",
        &[HOST, DATE],
        &creq,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    // get-vanilla-query: no query at all signs the same.
    check(
        "GET",
        "",
        "",
        &[HOST, DATE],
        &creq,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
}

#[test]
fn query_pairs_are_sorted() {
    // get-vanilla-query-order-key-case
    check(
        "GET",
        "/",
        "Param2=value2&Param1=value1",
        &[HOST, DATE],
        &format!("GET\n/\nParam1=value1&Param2=value2\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    );
    // get-vanilla-query-order-encoded: pairs as sent, sorted bytewise.
    check(
        "GET",
        "/",
        "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        &[HOST, DATE],
        &format!(
            "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n{VANILLA_HEADERS}{EMPTY_SHA256}"
        ),
        "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    );
    // get-vanilla-query-unreserved
    let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let q = format!("{unreserved}={unreserved}");
    check(
        "GET",
        "/",
        &q,
        &[HOST, DATE],
        &format!("GET\n/\n{q}\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    );
}

#[test]
fn post_vanilla_and_header_key_case() {
    let creq = format!("POST\n/\n\n{VANILLA_HEADERS}{EMPTY_SHA256}");
    let sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
    check("POST", "/", "", &[HOST, DATE], &creq, sig);
    // post-header-key-case: names sign lowercased whatever case they are sent in.
    check(
        "POST",
        "/",
        "",
        &[
            ("HOST", "example.amazonaws.com"),
            ("x-amz-DATE", "20150830T123600Z"),
        ],
        &creq,
        sig,
    );
}

#[test]
fn post_x_www_form_urlencoded_hashes_the_body() {
    let hash = hex_sha256(b"Param1=value1");
    assert_eq!(
        hash,
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        HOST,
        ("Content-Length", "13"),
        ("X-Amz-Content-Sha256", hash.as_str()),
        DATE,
    ];
    let creq = format!(
        "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n\
         host:example.amazonaws.com\nx-amz-content-sha256:{hash}\nx-amz-date:20150830T123600Z\n\n\
         content-length;content-type;host;x-amz-content-sha256;x-amz-date\n{hash}"
    );
    check_with(
        "POST",
        "/",
        "",
        &headers,
        &hash,
        &creq,
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    );
}

#[test]
fn paths_are_encoded_again() {
    // get-utf8
    check(
        "GET",
        "/ሴ",
        "",
        &[HOST, DATE],
        &format!("GET\n/%E1%88%B4\n\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    );
    // get-space
    check(
        "GET",
        "/example space/",
        "",
        &[HOST, DATE],
        &format!("GET\n/example%20space/\n\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    );
    // get-slash-unnormalized, get-slashes-unnormalized: slashes are kept as they are.
    check(
        "GET",
        "//",
        "",
        &[HOST, DATE],
        &format!("GET\n//\n\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e",
    );
    check(
        "GET",
        "//example//",
        "",
        &[HOST, DATE],
        &format!("GET\n//example//\n\n{VANILLA_HEADERS}{EMPTY_SHA256}"),
        "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
    );
    // A Bedrock model id's colon, sent as %3A, signs as %253A.
    assert_eq!(
        canonical_uri("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
    );
}

#[test]
fn header_values_are_trimmed_and_folded() {
    // get-header-value-trim
    check(
        "GET",
        "/",
        "",
        &[
            HOST,
            ("My-Header1", " value1"),
            ("My-Header2", " \"a   b   c\""),
            DATE,
        ],
        &format!(
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n\
             x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY_SHA256}"
        ),
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    );
    // Values of a repeated name join, in order, under one name.
    let (block, signed) = canonical_headers(&[("My-Header1", "b"), HOST, ("my-header1", "a")]);
    assert_eq!(block, "host:example.amazonaws.com\nmy-header1:b,a\n");
    assert_eq!(signed, "host;my-header1");
}

#[test]
fn session_tokens_are_signed() {
    // get-vanilla-with-session-token
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    check(
        "GET",
        "/",
        "",
        &[HOST, DATE, ("X-Amz-Security-Token", token)],
        &format!(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\
             x-amz-security-token:{token}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY_SHA256}"
        ),
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    );
    // post-sts-header-before
    let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    check(
        "POST",
        "/",
        "",
        &[HOST, DATE, ("x-amz-security-token", token)],
        &format!(
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\
             x-amz-security-token:{token}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY_SHA256}"
        ),
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    );
}

#[test]
fn the_string_to_sign_has_the_published_form() {
    let (creq, _) = canonical_request(&Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &[HOST, DATE],
        payload_hash: EMPTY_SHA256,
    });
    // post-header-key-case's published string to sign.
    assert_eq!(
        string_to_sign(&SCOPE, &creq),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
    );
}

#[test]
fn unix_seconds_format_as_amz_dates() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
    assert_eq!(date_stamp(1_440_938_160), "20150830");
    // Leap days, the century rules, the end of a year.
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    assert_eq!(amz_date(4_107_542_399), "21000228T235959Z");
    assert_eq!(amz_date(1_709_164_800), "20240229T000000Z");
    assert_eq!(amz_date(4_102_444_800), "21000101T000000Z");
    assert_eq!(amz_date(4_133_894_400), "21001231T000000Z");
    // Every day for a few centuries: each date follows the one before it.
    let mut prev = civil_from_days(-1);
    for days in 0..200_000 {
        let (y, m, d) = civil_from_days(days);
        let next_day = (y, m, d) == (prev.0, prev.1, prev.2 + 1);
        let next_month = (y, m, d) == (prev.0, prev.1 + 1, 1);
        let next_year = (y, m, d) == (prev.0 + 1, 1, 1);
        assert!(
            next_day || next_month || next_year,
            "{prev:?} then {:?}",
            (y, m, d)
        );
        prev = (y, m, d);
    }
}
