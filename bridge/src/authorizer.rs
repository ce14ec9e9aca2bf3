//! The HTTP API's JWT authorizer, played as API Gateway plays it: before any function is invoked,
//! a route that names an authorizer needs a token it accepts.
//!
//! API Gateway's rules (developer guide, "Control access to HTTP APIs with JWT authorizers" and
//! "Troubleshooting issues with HTTP API JWT authorizers"), checked here in this order:
//!
//! 1. the token is the identity source header's value, bare or after `Bearer `;
//! 2. it is a JWT signed with RS256 (only RSA algorithms are supported; `none`, `HS256` and the
//!    rest are refused) by a key of the issuer's JWKS, named by the header's `kid`;
//! 3. `iss` is the configured issuer exactly; `aud` (or, only when there is no `aud`, `client_id`)
//!    is one of the configured audiences; `token_use` is `access` (a Cognito ID token carries
//!    `aud` = the client id too: this bridge refuses it by its `token_use`, as the template means
//!    only access tokens to pass);
//! 4. `exp` is after now, `nbf` and `iat` are not after now. API Gateway documents no clock-skew
//!    leeway, so there is none here: the emulator runs on this machine's clock;
//! 5. when the route has `AuthorizationScopes`, the token's `scope` (or `scp`) holds at least one.
//!
//! A refusal is API Gateway's: 401 `{"message":"Unauthorized"}` (or 403 `{"message":"Forbidden"}`
//! for a missing scope) with a `www-authenticate` header in the documented form
//! `Bearer scope="…" error="invalid_token" error_description="…"`. The function is not invoked.
//!
//! Keys come from the user pool's JWKS on the emulator, fetched when the bridge starts and again
//! (at most every [`REFETCH_INTERVAL`]) when a token names a `kid` not seen yet.
//! [`verify_request`] is the pure part: keys and time are given.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, Request};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::apigw::OutgoingResponse;
use super::routes::RouteAuth;
use crate::http_client::HttpClient;

/// The least time between two JWKS fetches for unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What an authorizer checks tokens against, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The authorizer's name, for logs.
    pub name: String,
    /// The header the token is in, lower case (`authorization`).
    pub identity_header: String,
    /// The issuer `iss` must equal.
    pub issuer: String,
    /// The audiences one of which `aud` (or `client_id`) must be.
    pub audience: Vec<String>,
}

/// The issuer's public keys, by `kid`: the RSA keys of a JWKS (other kinds are left out).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, DecodingKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// The RSA signing keys of a JWKS document (`{"keys": [{"kty": "RSA", "kid", "n", "e"}]}`).
    pub fn from_jwks(document: &[u8]) -> anyhow::Result<Self> {
        let document: Value = serde_json::from_slice(document).context("the JWKS is not JSON")?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .context("the JWKS has no keys array")?;
        let mut keys = BTreeMap::new();
        for entry in entries {
            let text = |name: &str| entry.get(name).and_then(Value::as_str);
            let usable = text("kty") == Some("RSA")
                && text("alg").is_none_or(|alg| alg == "RS256")
                && text("use").is_none_or(|usage| usage == "sig");
            let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e")) else {
                continue;
            };
            if usable {
                let key = DecodingKey::from_rsa_components(n, e)
                    .with_context(|| format!("JWKS key {kid}"))?;
                keys.insert(kid.to_owned(), key);
            }
        }
        Ok(Self { keys })
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token in the identity source.
    Missing,
    /// Not a readable JWT (the detail is for the log).
    Malformed(String),
    /// Signed with something other than RS256.
    UnsupportedAlgorithm(String),
    /// Its `kid` is none of the issuer's keys.
    UnknownKey(String),
    /// The signature does not match.
    BadSignature,
    /// `iss` is not the issuer.
    WrongIssuer,
    /// Neither `aud` nor `client_id` is an audience.
    WrongAudience,
    /// `token_use` is not `access`.
    NotAccessToken,
    /// `exp` has passed.
    Expired,
    /// `nbf` is still to come.
    NotYetValid,
    /// `iat` is still to come.
    IssuedInTheFuture,
    /// The token holds none of the route's scopes.
    InsufficientScope,
}

impl Rejection {
    /// The status API Gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::InsufficientScope => 403,
            _ => 401,
        }
    }

    /// The `error_description` of the `www-authenticate` header.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Missing => "the request has no token",
            Self::Malformed(_) => "the token could not be parsed",
            Self::UnsupportedAlgorithm(_) => "the token's signing algorithm is not supported",
            Self::UnknownKey(_) => "the token's signing key is unknown",
            Self::BadSignature => "the token's signature is invalid",
            Self::WrongIssuer => "the token does not have a valid issuer",
            // The one description AWS documents, word for word.
            Self::WrongAudience => "the token does not have a valid audience",
            Self::NotAccessToken => "the token is not an access token",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::IssuedInTheFuture => "the token was issued in the future",
            Self::InsufficientScope => "the token does not have the required scopes",
        }
    }

    /// The `www-authenticate` value, in API Gateway's form:
    /// `Bearer scope="<route scopes>" error="invalid_token" error_description="<why>"`
    /// (`error="insufficient_scope"` for a missing scope).
    pub fn www_authenticate(&self, route_scopes: &[String]) -> String {
        let error = match self {
            Self::InsufficientScope => "insufficient_scope",
            _ => "invalid_token",
        };
        format!(
            "Bearer scope=\"{}\" error=\"{error}\" error_description=\"{}\"",
            route_scopes.join(" "),
            self.description()
        )
    }

    /// The response API Gateway sends.
    pub fn response(&self, route_scopes: &[String]) -> OutgoingResponse {
        let message = match self.status() {
            403 => "Forbidden",
            _ => "Unauthorized",
        };
        let mut response = OutgoingResponse::message(self.status(), message);
        response.headers.push((
            "www-authenticate".into(),
            self.www_authenticate(route_scopes),
        ));
        response
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(detail) => write!(f, "{}: {detail}", self.description()),
            Self::UnsupportedAlgorithm(alg) => write!(f, "{} ({alg})", self.description()),
            Self::UnknownKey(kid) => write!(f, "{} (kid {kid})", self.description()),
            _ => f.write_str(self.description()),
        }
    }
}

/// What an accepted token establishes: its claims and, when the route asks for scopes, its
/// scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// Every claim, its value as a string ([`claim_strings`]).
    pub claims: Map<String, Value>,
    /// The token's scopes when the route has `AuthorizationScopes`, else `None`.
    pub scopes: Option<Vec<String>>,
}

impl Authorized {
    /// The payload-2.0 event's `requestContext.authorizer`: `{"jwt": {"claims", "scopes"}}`.
    pub fn context(&self) -> Value {
        json!({ "jwt": { "claims": self.claims, "scopes": self.scopes } })
    }
}

/// One claim value as API Gateway hands it to a function: strings as they are, numbers as their
/// decimal text, arrays as `[a b c]` — the items space-separated in brackets, the way HTTP APIs
/// render `cognito:groups` (reported from real HTTP APIs in
/// aws-solutions-library-samples/guidance-for-claude-code-with-amazon-bedrock#802 and its fix
/// #803, and measured against API Gateway in floci-io/floci#2011: `"[admin poweruser]"`).
/// Objects and `null` (Cognito access tokens have none) are their JSON text: not measured.
fn claim_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(claim_string).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(_) | Value::Null => value.to_string(),
    }
}

/// Every claim as a string ([`claim_string`]): what `requestContext.authorizer.jwt.claims` holds.
pub fn claim_strings(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(claim_string(value))))
        .collect()
}

/// The token in `header`: its value, bare or after `Bearer ` (API Gateway accepts both).
pub fn token_of<'h>(headers: &'h HeaderMap, header: &str) -> Option<&'h str> {
    let value = headers.get(header)?.to_str().ok()?.trim();
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// Base64url without padding, as JWTs encode their parts.
fn base64url_decode(part: &str) -> Option<Vec<u8>> {
    if part.contains(['+', '/', '=']) {
        return None;
    }
    let mut standard: String = part
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    aws_smithy_types::base64::decode(standard).ok()
}

/// The header's `alg` and `kid`, read before anything is trusted.
fn header_of(token: &str) -> Result<(String, Option<String>), Rejection> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
        return Err(Rejection::Malformed(format!(
            "{} part(s) instead of header.payload.signature",
            parts.len()
        )));
    }
    let header: Value = base64url_decode(parts[0])
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| Rejection::Malformed("the header is not base64url JSON".into()))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| Rejection::Malformed("the header has no alg".into()))?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg.to_owned(), kid))
}

/// A numeric date claim, if present.
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| Rejection::Malformed(format!("{name} is not a number"))),
    }
}

/// The token's scopes: `scope` (space-separated), else `scp` (space-separated or a list).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let split = |text: &str| text.split_whitespace().map(str::to_owned).collect();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(scope)), _) | (None, Some(Value::String(scope))) => split(scope),
        (None, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks a request's token against `config` and `keys` at `now` (Unix seconds) for a route
/// asking for `route_scopes` (see the module doc for the rules and their order).
pub fn verify_request(
    config: &JwtConfig,
    keys: &KeySet,
    headers: &HeaderMap,
    route_scopes: &[String],
    now: i64,
) -> Result<Authorized, Rejection> {
    let token = token_of(headers, &config.identity_header).ok_or(Rejection::Missing)?;
    let (alg, kid) = header_of(token)?;
    if alg != "RS256" {
        return Err(Rejection::UnsupportedAlgorithm(alg));
    }
    let kid = kid.ok_or_else(|| Rejection::Malformed("the header has no kid".into()))?;
    let key = keys
        .keys
        .get(&kid)
        .ok_or_else(|| Rejection::UnknownKey(kid.clone()))?;
    // The signature only: every claim is checked below, by API Gateway's rules.
    let mut signature_only = Validation::new(Algorithm::RS256);
    signature_only.required_spec_claims.clear();
    signature_only.validate_exp = false;
    signature_only.validate_nbf = false;
    signature_only.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &signature_only)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => Rejection::BadSignature,
            ErrorKind::InvalidAlgorithm => Rejection::UnsupportedAlgorithm(alg.clone()),
            _ => Rejection::Malformed(error.to_string()),
        })?
        .claims;
    if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(Rejection::WrongIssuer);
    }
    let audience_ok = match (claims.get("aud"), claims.get("client_id")) {
        (Some(Value::String(aud)), _) => config.audience.contains(aud),
        (Some(Value::Array(auds)), _) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| config.audience.iter().any(|a| a == aud)),
        (Some(_), _) => false,
        (None, Some(Value::String(client))) => config.audience.contains(client),
        (None, _) => false,
    };
    if !audience_ok {
        return Err(Rejection::WrongAudience);
    }
    if claims.get("token_use").and_then(Value::as_str) != Some("access") {
        return Err(Rejection::NotAccessToken);
    }
    let now = now as f64;
    match seconds(&claims, "exp")? {
        None => return Err(Rejection::Malformed("no exp".into())),
        Some(exp) if exp <= now => return Err(Rejection::Expired),
        Some(_) => {}
    }
    if seconds(&claims, "nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(Rejection::NotYetValid);
    }
    if seconds(&claims, "iat")?.is_some_and(|iat| iat > now) {
        return Err(Rejection::IssuedInTheFuture);
    }
    let scopes = if route_scopes.is_empty() {
        None
    } else {
        let held = scopes_of(&claims);
        if !route_scopes.iter().any(|wanted| held.contains(wanted)) {
            return Err(Rejection::InsufficientScope);
        }
        Some(held)
    };
    Ok(Authorized {
        claims: claim_strings(&claims),
        scopes,
    })
}

/// Where a user pool's keys are: `{cognito endpoint}/{pool id}/.well-known/jwks.json` for an
/// issuer `https://cognito-idp.{region}.amazonaws.com/{pool id}` (on AWS, `{issuer}/.well-known/
/// jwks.json`; locally the emulator serves the pool's keys under its own address).
pub fn jwks_url(issuer: &str, cognito_endpoint: &str) -> anyhow::Result<String> {
    let pool = issuer
        .strip_prefix("https://cognito-idp.")
        .and_then(|rest| rest.split_once(".amazonaws.com/"))
        .map(|(_, pool)| pool)
        .filter(|pool| !pool.is_empty() && !pool.contains('/'))
        .with_context(|| {
            format!("issuer {issuer}: only Cognito user pools of the template are played locally")
        })?;
    Ok(format!(
        "{}/{pool}/.well-known/jwks.json",
        cognito_endpoint.trim_end_matches('/')
    ))
}

/// Where the keys come from, and when they were last fetched.
#[derive(Debug)]
struct KeySource {
    url: String,
    client: HttpClient,
    last_fetch: Mutex<Instant>,
    refetch_interval: Duration,
}

async fn fetch_keys(client: &HttpClient, url: &str) -> anyhow::Result<KeySet> {
    let request = Request::get(url).body(Bytes::new())?;
    let reply = client
        .send(request, FETCH_TIMEOUT)
        .await
        .with_context(|| format!("fetching {url}"))?;
    if !reply.status.is_success() {
        bail!("fetching {url}: {}", reply.status);
    }
    KeySet::from_jwks(&reply.body).with_context(|| format!("reading {url}"))
}

/// One JWT authorizer at work: its configuration and the issuer's current keys.
#[derive(Debug)]
pub struct JwtAuthorizer {
    config: JwtConfig,
    keys: RwLock<Arc<KeySet>>,
    source: Option<KeySource>,
}

impl JwtAuthorizer {
    /// An authorizer with fixed keys (never refetched).
    pub fn with_keys(config: JwtConfig, keys: KeySet) -> Self {
        Self {
            config,
            keys: RwLock::new(Arc::new(keys)),
            source: None,
        }
    }

    /// An authorizer whose keys are the JWKS at `jwks_url`, fetched now and again for an unknown
    /// `kid` at most every [`REFETCH_INTERVAL`].
    pub async fn fetch(config: JwtConfig, jwks_url: &str) -> anyhow::Result<Self> {
        Self::fetch_every(config, jwks_url, REFETCH_INTERVAL).await
    }

    /// [`JwtAuthorizer::fetch`], refetching at most every `refetch_interval`.
    pub async fn fetch_every(
        config: JwtConfig,
        jwks_url: &str,
        refetch_interval: Duration,
    ) -> anyhow::Result<Self> {
        let client = HttpClient::new();
        let keys = fetch_keys(&client, jwks_url).await?;
        info!(authorizer = %config.name, issuer = %config.issuer, keys = keys.len(), jwks = jwks_url, "JWT authorizer ready");
        Ok(Self {
            config,
            keys: RwLock::new(Arc::new(keys)),
            source: Some(KeySource {
                url: jwks_url.to_owned(),
                client,
                last_fetch: Mutex::new(Instant::now()),
                refetch_interval,
            }),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fetches the keys again unless that was done within the refetch interval; whether new keys
    /// came.
    async fn refetch(&self) -> bool {
        let Some(source) = &self.source else {
            return false;
        };
        let mut last_fetch = source.last_fetch.lock().await;
        if last_fetch.elapsed() < source.refetch_interval {
            return false;
        }
        *last_fetch = Instant::now();
        match fetch_keys(&source.client, &source.url).await {
            Ok(keys) => {
                info!(authorizer = %self.config.name, keys = keys.len(), "JWKS fetched again for an unknown kid");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                true
            }
            Err(error) => {
                warn!(authorizer = %self.config.name, error = %format!("{error:#}"), "JWKS fetch failed");
                false
            }
        }
    }

    /// Checks a request for a route asking for `route_scopes`, now.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        route_scopes: &[String],
    ) -> Result<Authorized, Rejection> {
        let now = Utc::now().timestamp();
        match verify_request(&self.config, &self.keys(), headers, route_scopes, now) {
            Err(Rejection::UnknownKey(_)) if self.refetch().await => {
                verify_request(&self.config, &self.keys(), headers, route_scopes, now)
            }
            outcome => outcome,
        }
    }
}

/// Every JWT authorizer the routes use, by API and name.
#[derive(Debug, Clone, Default)]
pub struct Authorizers {
    by_name: BTreeMap<(String, String), Arc<JwtAuthorizer>>,
}

impl Authorizers {
    /// Adds the authorizer `name` of the API `api`.
    pub fn insert(&mut self, api: &str, name: &str, authorizer: JwtAuthorizer) {
        self.by_name
            .insert((api.to_owned(), name.to_owned()), Arc::new(authorizer));
    }

    /// The authorizer a route names.
    pub fn get(&self, auth: &RouteAuth) -> Option<&JwtAuthorizer> {
        self.by_name
            .get(&(auth.api.clone(), auth.authorizer.clone()))
            .map(Arc::as_ref)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! One test per rule, with a test-only RSA key pair (`testdata/`).
    use http::HeaderValue;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    /// The test-only private key (see `testdata/README.md`).
    pub(crate) const TEST_KEY: &[u8] = include_bytes!("testdata/jwt-test-key.pem");
    const TEST_PUBLIC_KEY: &[u8] = include_bytes!("testdata/jwt-test-key.pub.pem");
    pub(crate) const KID: &str = "test-key";
    pub(crate) const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";
    pub(crate) const CLIENT: &str = "client-1";
    pub(crate) const NOW: i64 = 1_800_000_000;
    const ADMIN: &str = "aws.cognito.signin.user.admin";

    pub(crate) fn config() -> JwtConfig {
        JwtConfig {
            name: "CognitoJwt".into(),
            identity_header: "authorization".into(),
            issuer: ISSUER.into(),
            audience: vec![CLIENT.into()],
        }
    }

    /// The JWKS of the test key, as a pool serves it.
    pub(crate) fn jwks() -> Vec<u8> {
        let key = EncodingKey::from_rsa_pem(TEST_KEY).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(KID.into());
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["use"] = json!("sig");
        json!({"keys": [jwk, {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"}]})
            .to_string()
            .into_bytes()
    }

    pub(crate) fn keys() -> KeySet {
        KeySet::from_jwks(&jwks()).unwrap()
    }

    /// Claims as moto's access tokens have them, issued at `now`.
    pub(crate) fn claims(now: i64) -> Value {
        json!({
            "iss": ISSUER,
            "sub": "4f9c-subject",
            "client_id": CLIENT,
            "token_use": "access",
            "scope": ADMIN,
            "cognito:groups": ["customers", "support"],
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
            "jti": "jti-1",
            "username": "alice",
        })
    }

    pub(crate) fn sign(claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.into());
        let key = EncodingKey::from_rsa_pem(TEST_KEY).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims(NOW);
        change(&mut claims);
        sign(&claims)
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Authorization", HeaderValue::from_str(value).unwrap());
        headers
    }

    fn check(value: &str) -> Result<Authorized, Rejection> {
        verify_request(&config(), &keys(), &headers(value), &[ADMIN.into()], NOW)
    }

    fn bearer(token: &str) -> Result<Authorized, Rejection> {
        check(&format!("Bearer {token}"))
    }

    fn base64url(bytes: &[u8]) -> String {
        aws_smithy_types::base64::encode(bytes)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    }

    #[test]
    fn a_valid_token_passes_with_its_claims_as_strings_and_its_scopes() {
        let authorized = bearer(&sign(&claims(NOW))).unwrap();
        let strings = &authorized.claims;
        assert_eq!(strings["sub"], "4f9c-subject");
        assert_eq!(strings["cognito:groups"], "[customers support]");
        assert_eq!(strings["exp"], (NOW + 3600).to_string());
        assert_eq!(strings["iat"], NOW.to_string());
        assert!(strings.values().all(Value::is_string), "{strings:?}");
        assert_eq!(authorized.scopes, Some(vec![ADMIN.to_owned()]));
        let context = authorized.context();
        assert_eq!(context["jwt"]["claims"]["username"], "alice");
        assert_eq!(context["jwt"]["scopes"], json!([ADMIN]));
        // A route without AuthorizationScopes: any valid token, and no scopes in the event.
        let open =
            verify_request(&config(), &keys(), &headers(&sign(&claims(NOW))), &[], NOW).unwrap();
        assert_eq!(open.scopes, None);
        assert_eq!(open.context()["jwt"]["scopes"], Value::Null);
    }

    #[test]
    fn a_bare_token_and_a_bearer_token_are_both_accepted() {
        let token = sign(&claims(NOW));
        assert!(check(&token).is_ok());
        assert!(bearer(&token).is_ok());
        assert!(check(&format!("bearer {token}")).is_ok());
    }

    #[test]
    fn a_missing_header_or_an_empty_token_is_refused() {
        let none = verify_request(&config(), &keys(), &HeaderMap::new(), &[], NOW);
        assert_eq!(none, Err(Rejection::Missing));
        assert_eq!(check("Bearer "), Err(Rejection::Missing));
    }

    #[test]
    fn a_malformed_token_is_refused() {
        assert!(matches!(bearer("not-a-jwt"), Err(Rejection::Malformed(_))));
        assert!(matches!(bearer("a.b.c"), Err(Rejection::Malformed(_))));
        let token = sign(&claims(NOW));
        let (two_parts, _) = token.rsplit_once('.').unwrap();
        assert!(matches!(bearer(two_parts), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn an_expired_token_is_refused_without_leeway() {
        assert_eq!(
            bearer(&with(|c| c["exp"] = json!(NOW - 1))),
            Err(Rejection::Expired)
        );
        assert_eq!(
            bearer(&with(|c| c["exp"] = json!(NOW))),
            Err(Rejection::Expired)
        );
        assert!(bearer(&with(|c| c["exp"] = json!(NOW + 1))).is_ok());
        assert!(matches!(
            bearer(&with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn a_token_not_valid_yet_or_issued_in_the_future_is_refused() {
        assert_eq!(
            bearer(&with(|c| c["nbf"] = json!(NOW + 1))),
            Err(Rejection::NotYetValid)
        );
        assert!(bearer(&with(|c| c["nbf"] = json!(NOW))).is_ok());
        assert_eq!(
            bearer(&with(|c| c["iat"] = json!(NOW + 1))),
            Err(Rejection::IssuedInTheFuture)
        );
    }

    #[test]
    fn a_token_of_another_issuer_is_refused() {
        assert_eq!(
            bearer(&with(|c| c["iss"] = json!(format!("{ISSUER}x")))),
            Err(Rejection::WrongIssuer)
        );
        assert_eq!(
            bearer(&with(|c| {
                c.as_object_mut().unwrap().remove("iss");
            })),
            Err(Rejection::WrongIssuer)
        );
    }

    #[test]
    fn a_token_for_another_audience_is_refused_and_aud_wins_over_client_id() {
        assert_eq!(
            bearer(&with(|c| c["client_id"] = json!("client-2"))),
            Err(Rejection::WrongAudience)
        );
        // API Gateway reads client_id only when there is no aud.
        assert_eq!(
            bearer(&with(|c| c["aud"] = json!("client-2"))),
            Err(Rejection::WrongAudience)
        );
        assert!(bearer(&with(|c| c["aud"] = json!(["other", CLIENT]))).is_ok());
        assert_eq!(
            bearer(&with(|c| {
                c.as_object_mut().unwrap().remove("client_id");
            })),
            Err(Rejection::WrongAudience)
        );
    }

    #[test]
    fn an_id_token_is_refused() {
        let id_token = with(|c| {
            let object = c.as_object_mut().unwrap();
            object.remove("client_id");
            object.insert("aud".into(), json!(CLIENT));
            object.insert("token_use".into(), json!("id"));
        });
        assert_eq!(bearer(&id_token), Err(Rejection::NotAccessToken));
    }

    #[test]
    fn a_token_without_one_of_the_routes_scopes_is_forbidden() {
        let token = with(|c| c["scope"] = json!("openid profile"));
        assert_eq!(bearer(&token), Err(Rejection::InsufficientScope));
        let scopes = ["email".to_owned(), "profile".to_owned()];
        let authorized =
            verify_request(&config(), &keys(), &headers(&token), &scopes, NOW).unwrap();
        assert_eq!(
            authorized.scopes,
            Some(vec!["openid".to_owned(), "profile".to_owned()])
        );
        let scp = with(|c| {
            c.as_object_mut().unwrap().remove("scope");
            c["scp"] = json!([ADMIN]);
        });
        assert!(bearer(&scp).is_ok());
    }

    #[test]
    fn a_tampered_signature_or_payload_is_refused() {
        let token = sign(&claims(NOW));
        let (message, signature) = token.rsplit_once('.').unwrap();
        let middle = signature.len() / 2;
        let flipped = if &signature[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        let tampered = format!(
            "{message}.{}{flipped}{}",
            &signature[..middle],
            &signature[middle + 1..]
        );
        assert_eq!(bearer(&tampered), Err(Rejection::BadSignature));
        let (header, _) = message.split_once('.').unwrap();
        let mut claims = claims(NOW);
        claims["cognito:groups"] = json!(["support"]);
        let forged = format!(
            "{header}.{}.{signature}",
            base64url(claims.to_string().as_bytes())
        );
        assert_eq!(bearer(&forged), Err(Rejection::BadSignature));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let header = base64url(br#"{"alg":"none","typ":"JWT","kid":"test-key"}"#);
        let payload = base64url(claims(NOW).to_string().as_bytes());
        assert_eq!(
            bearer(&format!("{header}.{payload}.")),
            Err(Rejection::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn an_hs256_token_keyed_with_the_public_key_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.into());
        let key = EncodingKey::from_secret(TEST_PUBLIC_KEY).unwrap();
        let token = jsonwebtoken::encode(&header, &claims(NOW), &key).unwrap();
        assert_eq!(
            bearer(&token),
            Err(Rejection::UnsupportedAlgorithm("HS256".into()))
        );
    }

    #[test]
    fn a_token_signed_by_an_unknown_key_is_refused() {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rotated".into());
        let key = EncodingKey::from_rsa_pem(TEST_KEY).unwrap();
        let token = jsonwebtoken::encode(&header, &claims(NOW), &key).unwrap();
        assert_eq!(bearer(&token), Err(Rejection::UnknownKey("rotated".into())));
        let mut header = Header::new(Algorithm::RS256);
        header.kid = None;
        let token = jsonwebtoken::encode(&header, &claims(NOW), &key).unwrap();
        assert!(matches!(bearer(&token), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn refusals_are_api_gateways_answers() {
        let scopes = [ADMIN.to_owned()];
        let expired = Rejection::Expired.response(&scopes);
        assert_eq!(expired.status, 401);
        assert_eq!(expired.body, br#"{"message":"Unauthorized"}"#);
        assert!(expired.headers.contains(&(
            "www-authenticate".into(),
            format!(
                r#"Bearer scope="{ADMIN}" error="invalid_token" error_description="the token has expired""#
            )
        )));
        let forbidden = Rejection::InsufficientScope.response(&scopes);
        assert_eq!(forbidden.status, 403);
        assert_eq!(forbidden.body, br#"{"message":"Forbidden"}"#);
        assert_eq!(
            Rejection::InsufficientScope.www_authenticate(&scopes),
            format!(
                r#"Bearer scope="{ADMIN}" error="insufficient_scope" error_description="the token does not have the required scopes""#
            )
        );
        // The documented example (a route without scopes).
        assert_eq!(
            Rejection::WrongAudience.www_authenticate(&[]),
            r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
        );
    }

    #[test]
    fn claims_render_as_api_gateway_renders_them() {
        let claims = json!({
            "s": "text", "n": 1_700_000_000, "f": 1.5, "b": true,
            "groups": ["a", "b"], "nested": [1, ["x"]], "one": ["solo"], "none": [],
        });
        let rendered = claim_strings(claims.as_object().unwrap());
        assert_eq!(
            Value::Object(rendered),
            json!({
                "s": "text", "n": "1700000000", "f": "1.5", "b": "true",
                "groups": "[a b]", "nested": "[1 [x]]", "one": "[solo]", "none": "[]",
            })
        );
    }

    #[test]
    fn jwks_keep_the_rsa_signing_keys_and_cognito_issuers_map_to_the_emulator() {
        let keys = keys();
        assert_eq!(keys.len(), 1, "the EC key is left out");
        assert!(KeySet::from_jwks(b"{}").is_err());
        assert!(KeySet::from_jwks(br#"{"keys": []}"#).unwrap().is_empty());
        assert_eq!(
            jwks_url(ISSUER, "http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000/us-east-1_test/.well-known/jwks.json"
        );
        assert!(jwks_url("https://login.example.com/", "http://127.0.0.1:5000").is_err());
    }

    /// Serves a JWKS without the test key first, with it from then on; counts the fetches.
    async fn rotating_jwks() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use hyper::server::conn::http1;
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/us-east-1_test/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&fetches);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        let body = match counted.fetch_add(1, Ordering::SeqCst) {
                            0 => br#"{"keys": []}"#.to_vec(),
                            _ => jwks(),
                        };
                        async move {
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(Bytes::from(body)),
                            ))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, fetches)
    }

    #[tokio::test]
    async fn an_unknown_kid_fetches_the_keys_again_at_most_every_interval() {
        use std::sync::atomic::Ordering;

        let token = sign(&claims(Utc::now().timestamp()));
        let scopes = [ADMIN.to_owned()];
        let (url, fetches) = rotating_jwks().await;
        let patient = JwtAuthorizer::fetch_every(config(), &url, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            patient.authorize(&headers(&token), &scopes).await,
            Err(Rejection::UnknownKey(KID.into()))
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "no refetch within the interval"
        );

        let (url, fetches) = rotating_jwks().await;
        let eager = JwtAuthorizer::fetch_every(config(), &url, Duration::ZERO)
            .await
            .unwrap();
        assert!(eager.authorize(&headers(&token), &scopes).await.is_ok());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "fetched again for the new kid"
        );
        assert!(eager.authorize(&headers(&token), &scopes).await.is_ok());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "a known kid needs no fetch"
        );
    }

    #[tokio::test]
    async fn an_authorizer_with_fixed_keys_checks_now() {
        let authorizer = JwtAuthorizer::with_keys(config(), keys());
        let now = Utc::now().timestamp();
        let token = sign(&claims(now));
        let scopes = [ADMIN.to_owned()];
        let authorized = authorizer
            .authorize(&headers(&format!("Bearer {token}")), &scopes)
            .await
            .unwrap();
        assert_eq!(authorized.claims["username"], "alice");
        let stale = sign(&claims(now - 7200));
        assert_eq!(
            authorizer.authorize(&headers(&stale), &scopes).await,
            Err(Rejection::Expired)
        );
    }
}
