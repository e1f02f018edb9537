//! Sign-in with an OpenID Connect provider (`access.oidc`): the authorization code flow
//! with PKCE, through the `openidconnect` crate.
//!
//! - The provider's metadata and keys are discovered at start, retried in the
//!   background until they are read, and read again on demand: a provider that is down
//!   never stops the appliance from starting or from taking password logins.
//! - `state`, `nonce` and the PKCE verifier of a sign-in in progress are kept here,
//!   server-side, for [`PENDING_FOR`], at most [`MAX_PENDING`] of them, each used once;
//!   the browser also carries `state` in a short-lived cookie, so a callback link made
//!   by someone else (login CSRF) is refused.
//! - The ID token is verified by the crate (signature, issuer, audience, expiry,
//!   nonce); the user's name, role and regions come from its claims, or from the
//!   userinfo endpoint when the ID token lacks them. A user whose claims give no role
//!   is refused, never let in as a viewer.
//! - The provider is reached by our own reqwest client (`oidc::http`): no redirects,
//!   timeouts, and a bound on every body read. `oidc::claims` maps claims to a principal.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _, UserInfoClaims,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::{Role, Scope};
use crate::config::settings::OidcSettings;

mod claims;
mod http;

/// How long a sign-in may take at the provider (login, consent) before its state is
/// forgotten.
pub const PENDING_FOR: Duration = Duration::from_secs(600);

/// Most sign-ins in progress at once; past it the oldest is forgotten.
pub const MAX_PENDING: usize = 1000;

/// Longest answer read from the provider (metadata, keys, tokens, userinfo).
pub const MAX_BODY: usize = 1 << 20;

/// A request to the provider ends after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The cookie carrying `state` from `/login/oidc` to its callback.
pub const STATE_COOKIE: &str = "wardops_oidc";

/// Every claim of a token beyond the standard ones, as JSON: the role, regions and
/// name claims are configurable, so they are looked up by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims(pub(super) HashMap<String, Value>);
impl AdditionalClaims for Claims {}

type Fields = IdTokenFields<
    Claims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type Provider = Client<
    Claims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in did not succeed; each says what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider cannot be reached now: {0}")]
    Unavailable(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Provider(String),
    #[error(
        "this sign-in is unknown, already used or expired (it lasts {} minutes): start again",
        PENDING_FOR.as_secs() / 60
    )]
    UnknownState,
    #[error("the identity provider's answer did not check out: {0}")]
    Invalid(String),
    #[error("{0} has no role in wardops: none of its {1} values is mapped to a role")]
    NoRole(String, String),
    #[error("{0} has no {1} claim, which says the regions a user sees")]
    NoRegions(String, String),
}

/// Someone the provider signed in, with what their claims give.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    pub role: Role,
    pub scope: Scope,
    /// Where to go after: a local path (checked when the sign-in began).
    pub next: String,
}

struct Pending {
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    next: String,
    at: Instant,
}

pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    provider: ArcSwapOption<Provider>,
    /// One discovery at a time: a burst of sign-ins while the provider is down waits
    /// for the one try in flight instead of each sending its own.
    discovering: tokio::sync::Mutex<()>,
    pending: Mutex<(HashMap<String, Pending>, VecDeque<String>)>,
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Oidc> {
        let http = http::client()?;
        Ok(Oidc {
            settings,
            http,
            provider: ArcSwapOption::empty(),
            discovering: tokio::sync::Mutex::new(()),
            pending: Mutex::new((HashMap::new(), VecDeque::new())),
        })
    }

    /// What the login page calls the provider.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Reads the provider's metadata and keys in the background until it succeeds,
    /// waiting 1 s, 2 s, … up to a minute between tries.
    pub fn spawn_discovery(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                if this.provider.load().is_some() {
                    return;
                }
                match this.discover().await {
                    Ok(()) => {
                        tracing::info!(issuer = %this.settings.issuer, "OpenID provider discovered");
                        return;
                    }
                    Err(e) => tracing::warn!(
                        issuer = %this.settings.issuer,
                        error = %e,
                        retry_in = ?wait,
                        "OpenID provider discovery failed; password logins still work"
                    ),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        })
    }

    async fn discover(&self) -> Result<(), OidcError> {
        let _one = self.discovering.lock().await;
        if self.provider.load().is_some() {
            return Ok(());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let metadata =
            CoreProviderMetadata::discover_async(issuer, &|r| http::send(self.http.clone(), r))
                .await
                .map_err(|e| OidcError::Unavailable(chain(&e)))?;
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let client = Provider::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(redirect);
        self.provider.store(Some(Arc::new(client)));
        Ok(())
    }

    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(p) = self.provider.load_full() {
            return Ok(p);
        }
        self.discover().await?;
        self.provider
            .load_full()
            .ok_or_else(|| OidcError::Unavailable("no metadata".into()))
    }

    /// Begins a sign-in that returns to `next` (a local path): the provider's URL to
    /// send the browser to, and the `state` for its cookie.
    pub async fn begin(&self, next: String) -> Result<(String, String), OidcError> {
        let provider = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut auth = provider.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            auth = auth.add_scope(openidconnect::Scope::new(scope.clone()));
        }
        let (url, state, nonce) = auth.set_pkce_challenge(challenge).url();
        let state = state.secret().clone();
        let now = Instant::now();
        let mut guard = self.pending.lock();
        let (map, order) = &mut *guard;
        while let Some(oldest) = order.front() {
            let stale = map
                .get(oldest)
                .is_none_or(|p| now.duration_since(p.at) >= PENDING_FOR);
            if !stale && map.len() < MAX_PENDING {
                break;
            }
            map.remove(oldest);
            order.pop_front();
        }
        map.insert(
            state.clone(),
            Pending {
                nonce,
                verifier,
                next,
                at: now,
            },
        );
        order.push_back(state.clone());
        Ok((url.to_string(), state))
    }

    /// Takes the sign-in `state` names (once), if it is live.
    fn take(&self, state: &str) -> Option<Pending> {
        let pending = self.pending.lock().0.remove(state)?;
        (Instant::now().duration_since(pending.at) < PENDING_FOR).then_some(pending)
    }

    /// Forgets the sign-in `state` names (the provider refused it), if the browser's
    /// cookie carries the same state: nobody else can end someone's sign-in.
    pub fn abandon(&self, state: &str, cookie_state: Option<&str>) {
        if same_state(state, cookie_state) {
            self.take(state);
        }
    }

    /// Finishes the sign-in `state` names with the provider's `code`: the user and what
    /// their claims give, or why not. `cookie_state` is the state the browser's cookie
    /// carries: it must be the same.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        cookie_state: Option<&str>,
    ) -> Result<SignedIn, OidcError> {
        if !same_state(state, cookie_state) {
            return Err(OidcError::UnknownState);
        }
        let pending = self.take(state).ok_or(OidcError::UnknownState)?;
        let provider = self.provider().await?;
        let http = |r| http::send(self.http.clone(), r);
        let tokens = provider
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Unavailable(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcError::Provider(format!("{r}"))
                }
                other => OidcError::Unavailable(chain(&other)),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Invalid("no ID token in the answer".into()))?;
        let verifier = provider.id_token_verifier();
        let claims = match id_token.claims(&verifier, &pending.nonce) {
            Ok(c) => c.clone(),
            Err(e) => {
                if matches!(
                    e,
                    openidconnect::ClaimsVerificationError::SignatureVerification(_)
                ) {
                    // The provider may have rotated its keys: read them again for the
                    // next sign-in.
                    self.provider.store(None);
                }
                return Err(OidcError::Invalid(e.to_string()));
            }
        };
        let mut found: HashMap<String, Value> = claims.additional_claims().0.clone();
        let std_name = claims.preferred_username().map(|u| u.to_string());
        if let Some(u) = &std_name {
            found
                .entry("preferred_username".into())
                .or_insert(Value::String(u.clone()));
        }
        found.insert("sub".into(), Value::String(claims.subject().to_string()));
        if let Some(e) = claims.email() {
            found
                .entry("email".into())
                .or_insert(Value::String(e.to_string()));
        }
        let wanted = [
            Some(&self.settings.username_claim),
            Some(&self.settings.role_claim),
            self.settings.regions_claim.as_ref(),
        ];
        if wanted.iter().flatten().any(|c| !found.contains_key(*c))
            && let Ok(request) = provider.user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            let info: Result<UserInfoClaims<Claims, CoreGenderClaim>, _> =
                request.request_async(&http).await;
            match info {
                Ok(info) => {
                    for (k, v) in &info.additional_claims().0 {
                        found.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    if let Some(u) = info.preferred_username() {
                        found
                            .entry("preferred_username".into())
                            .or_insert(Value::String(u.to_string()));
                    }
                }
                Err(e) => tracing::warn!(error = %chain(&e), "OpenID userinfo failed"),
            }
        }
        let (user, role, scope) = claims::map(&self.settings, &found)?;
        Ok(SignedIn {
            user,
            role,
            scope,
            next: pending.next,
        })
    }
}

/// True if the browser's cookie carries `state` (compared in constant time).
fn same_state(state: &str, cookie_state: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    cookie_state.is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())))
}

/// An error with its sources, for a log line or the login page.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings(regions_claim: Option<&str>) -> OidcSettings {
        OidcSettings {
            name: "Test".into(),
            issuer: "http://127.0.0.1:1/".into(),
            client_id: "wardops".into(),
            client_secret: None,
            redirect_url: "http://127.0.0.1:2/login/oidc/callback".into(),
            scopes: vec!["openid".into()],
            username_claim: "preferred_username".into(),
            role_claim: "groups".into(),
            roles: vec![
                (Role::Admin, vec!["noc-admins".into()]),
                (Role::Operator, vec!["noc-operators".into()]),
                (Role::Viewer, vec!["noc".into()]),
            ],
            regions_claim: regions_claim.map(Into::into),
        }
    }

    pub(super) fn oidc(regions_claim: Option<&str>) -> Oidc {
        Oidc::new(settings(regions_claim)).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_is_used_once_and_expires() {
        let o = oidc(None);
        let now = Instant::now();
        let put = |state: &str| {
            let (_, verifier) = PkceCodeChallenge::new_random_sha256();
            let mut g = o.pending.lock();
            g.0.insert(
                state.into(),
                Pending {
                    nonce: Nonce::new_random(),
                    verifier,
                    next: "/".into(),
                    at: now,
                },
            );
            g.1.push_back(state.into());
        };
        put("a");
        put("b");
        assert!(o.take("a").is_some());
        assert!(o.take("a").is_none(), "replayed");
        tokio::time::advance(PENDING_FOR).await;
        assert!(o.take("b").is_none(), "expired");
        put("e");
        o.abandon("e", Some("other"));
        o.abandon("e", None);
        assert!(
            o.pending.lock().0.contains_key("e"),
            "only its own browser ends it"
        );
        o.abandon("e", Some("e"));
        assert!(!o.pending.lock().0.contains_key("e"));
        let e = o.finish("code", "c", Some("d")).await.unwrap_err();
        assert!(matches!(e, OidcError::UnknownState));
        let e = o.finish("code", "c", None).await.unwrap_err();
        assert!(matches!(e, OidcError::UnknownState));
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_a_clear_error() {
        let o = oidc(None);
        let e = o.begin("/".into()).await.unwrap_err();
        assert!(matches!(e, OidcError::Unavailable(_)), "{e}");
    }
}
