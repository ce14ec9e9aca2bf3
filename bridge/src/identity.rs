//! Who calls the API: the stage's Cognito user pool (`UserPool` in `template.yaml`) and its app
//! client (`UserPoolClient`), as operator tools, the demo, load runs and tests need them — find
//! them ([`Identity::discover`]), make sure a user exists in a group ([`Identity::ensure_user`]),
//! sign a user in for tokens ([`Identity::sign_in`]).
//!
//! Passwords: none is kept anywhere. Each sign-in sets a fresh random password on the user
//! (`AdminSetUserPassword`, permanent) and signs in with it at once (`AdminInitiateAuth`,
//! `ADMIN_USER_PASSWORD_AUTH`); the caller's AWS credentials are what authenticate. That is only
//! for users these tools create ([`Identity::ensure_user`]) on local and test stages: signing in
//! someone else's user replaces their password. Passwords and tokens are never logged, and
//! [`Tokens`]' `Debug` hides them.
//!
//! SDK types stay in this module: callers get ids, subjects and tokens as plain strings.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, MessageActionType, UserStatusType};
use tokio::sync::Mutex;
use tracing::info;

/// Sign-in attempts when another process changes the user's password between our setting it
/// and signing in with it.
const SIGN_IN_ATTEMPTS: usize = 3;
/// The most results one `ListUserPools`/`ListUserPoolClients` page may hold.
const PAGE_SIZE: i32 = 60;

/// The user pool's name for `stage`: `UserPool.Properties.UserPoolName` in `template.yaml`
/// (`orderflow-${Stage}-users`; the bridge's tests hold the two together).
pub fn pool_name(stage: &str) -> String {
    format!("orderflow-{stage}-users")
}

/// The app client's name for `stage`: `UserPoolClient.Properties.ClientName` in `template.yaml`
/// (`orderflow-${Stage}-api`).
pub fn client_name(stage: &str) -> String {
    format!("orderflow-{stage}-api")
}

/// The id of the user pool named `name`, if there is one (an error if there are several).
pub async fn find_user_pool(config: &SdkConfig, name: &str) -> Result<Option<String>> {
    let cognito = Client::new(config);
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = cognito
            .list_user_pools()
            .max_results(PAGE_SIZE)
            .set_next_token(next)
            .send()
            .await
            .map_err(aws_sdk_cognitoidentityprovider::Error::from)
            .context("listing user pools")?;
        found.extend(
            page.user_pools()
                .iter()
                .filter(|pool| pool.name() == Some(name))
                .filter_map(|pool| pool.id().map(str::to_owned)),
        );
        match page.next_token {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => break,
        }
    }
    if found.len() > 1 {
        bail!(
            "{} user pools are named {name} ({}): cannot tell which one is meant",
            found.len(),
            found.join(", ")
        );
    }
    Ok(found.pop())
}

/// The id of the app client named `name` in the pool `pool_id`, if there is one (an error if
/// there are several).
pub async fn find_app_client(
    config: &SdkConfig,
    pool_id: &str,
    name: &str,
) -> Result<Option<String>> {
    let cognito = Client::new(config);
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = cognito
            .list_user_pool_clients()
            .user_pool_id(pool_id)
            .max_results(PAGE_SIZE)
            .set_next_token(next)
            .send()
            .await
            .map_err(aws_sdk_cognitoidentityprovider::Error::from)
            .with_context(|| format!("listing the app clients of user pool {pool_id}"))?;
        found.extend(
            page.user_pool_clients()
                .iter()
                .filter(|client| client.client_name() == Some(name))
                .filter_map(|client| client.client_id().map(str::to_owned)),
        );
        match page.next_token {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => break,
        }
    }
    if found.len() > 1 {
        bail!(
            "{} app clients of user pool {pool_id} are named {name}: cannot tell which one is meant",
            found.len()
        );
    }
    Ok(found.pop())
}

/// What a sign-in returns. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token: what the API's JWT authorizer accepts (`Authorization: Bearer …`).
    pub access_token: String,
    /// The ID token.
    pub id_token: String,
    /// The refresh token, when the pool gave one.
    pub refresh_token: Option<String>,
    /// How long the access and ID tokens are valid from now.
    pub expires_in: Duration,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<hidden>")
            .field("id_token", &"<hidden>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<hidden>"),
            )
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The stage's user pool and app client, and an administrator's way into them.
#[derive(Debug)]
pub struct Identity {
    cognito: Client,
    pool_id: String,
    client_id: String,
    /// One sign-in at a time: each sets the user's password before using it.
    signing_in: Mutex<()>,
}

/// A fresh password that any policy accepts: upper and lower case, a digit, a symbol, 64 random
/// hex digits (256 bits).
fn fresh_password() -> String {
    let random = |_| uuid::Uuid::new_v4().simple().to_string();
    let [a, b]: [String; 2] = std::array::from_fn(random);
    format!("Of1-{a}{}", b.to_uppercase())
}

impl Identity {
    /// The user pool and app client of `stage` (named as `template.yaml` names them); an error
    /// that says so when `orderflow-bridge setup` (or the deployment) has not created them.
    pub async fn discover(config: &SdkConfig, stage: &str) -> Result<Self> {
        Self::discover_named(config, &pool_name(stage), &client_name(stage)).await
    }

    /// The user pool named `pool` and its app client named `client`.
    pub async fn discover_named(config: &SdkConfig, pool: &str, client: &str) -> Result<Self> {
        let pool_id = find_user_pool(config, pool).await?.with_context(|| {
            format!("no user pool named {pool} (run `orderflow-bridge setup` first)")
        })?;
        let client_id = find_app_client(config, &pool_id, client)
            .await?
            .with_context(|| {
                format!(
                    "user pool {pool} ({pool_id}) has no app client named {client} (run `orderflow-bridge setup` first)"
                )
            })?;
        Ok(Self {
            cognito: Client::new(config),
            pool_id,
            client_id,
            signing_in: Mutex::new(()),
        })
    }

    /// The user pool's id (`us-east-1_…`).
    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// The app client's id: the audience of the tokens it issues.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Makes sure `username` exists, with a usable (permanent) password, and is a member of
    /// `group`; returns the user's subject (`sub`, the id the API's functions see). Creating a user
    /// sends no message (`MessageAction: SUPPRESS`). Safe to call again for an existing user.
    pub async fn ensure_user(&self, username: &str, group: &str) -> Result<String> {
        let user = match self.user(username).await? {
            Some(user) => user,
            None => {
                let created = self
                    .cognito
                    .admin_create_user()
                    .user_pool_id(&self.pool_id)
                    .username(username)
                    .temporary_password(fresh_password())
                    .message_action(MessageActionType::Suppress)
                    .send()
                    .await;
                match created {
                    Ok(_) => info!(username, "user created"),
                    // Created meanwhile by someone else: just as good.
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_username_exists_exception()) => {}
                    Err(error) => {
                        return Err(aws_sdk_cognitoidentityprovider::Error::from(error))
                            .with_context(|| format!("creating user {username}"));
                    }
                }
                self.user(username)
                    .await?
                    .with_context(|| format!("user {username} is gone right after creation"))?
            }
        };
        if user.status != Some(UserStatusType::Confirmed) {
            // A temporary password would make sign-ins answer with a challenge.
            self.set_password(username, &fresh_password()).await?;
        }
        self.cognito
            .admin_add_user_to_group()
            .user_pool_id(&self.pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await
            .map_err(aws_sdk_cognitoidentityprovider::Error::from)
            .with_context(|| format!("adding user {username} to group {group}"))?;
        Ok(user.subject)
    }

    /// Signs `username` in (a fresh password, then `ADMIN_USER_PASSWORD_AUTH`; see the module
    /// doc) and returns the tokens.
    pub async fn sign_in(&self, username: &str) -> Result<Tokens> {
        let _turn = self.signing_in.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let password = fresh_password();
            self.set_password(username, &password).await?;
            let answer = self
                .cognito
                .admin_initiate_auth()
                .user_pool_id(&self.pool_id)
                .client_id(&self.client_id)
                .auth_flow(AuthFlowType::AdminUserPasswordAuth)
                .auth_parameters("USERNAME", username)
                .auth_parameters("PASSWORD", password)
                .send()
                .await;
            let answer = match answer {
                Ok(answer) => answer,
                // Another process set another password in between: set ours again.
                Err(error)
                    if attempt < SIGN_IN_ATTEMPTS
                        && error
                            .as_service_error()
                            .is_some_and(|e| e.is_not_authorized_exception()) =>
                {
                    continue;
                }
                Err(error) => {
                    return Err(aws_sdk_cognitoidentityprovider::Error::from(error))
                        .with_context(|| format!("signing in {username}"));
                }
            };
            let Some(result) = answer.authentication_result else {
                bail!(
                    "signing in {username}: the pool asks for {:?} instead of returning tokens",
                    answer.challenge_name
                );
            };
            let access_token = result
                .access_token
                .with_context(|| format!("signing in {username}: no access token"))?;
            let id_token = result
                .id_token
                .with_context(|| format!("signing in {username}: no ID token"))?;
            return Ok(Tokens {
                access_token,
                id_token,
                refresh_token: result.refresh_token,
                expires_in: Duration::from_secs(u64::try_from(result.expires_in).unwrap_or(0)),
            });
        }
    }

    async fn set_password(&self, username: &str, password: &str) -> Result<()> {
        self.cognito
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(aws_sdk_cognitoidentityprovider::Error::from)
            .with_context(|| format!("setting the password of {username}"))?;
        Ok(())
    }

    /// The user's subject and status, or `None` when there is no such user.
    async fn user(&self, username: &str) -> Result<Option<User>> {
        let answer = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await;
        let user = match answer {
            Ok(user) => user,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(aws_sdk_cognitoidentityprovider::Error::from(error))
                    .with_context(|| format!("looking up user {username}"));
            }
        };
        let subject = user
            .user_attributes()
            .iter()
            .find(|attribute| attribute.name() == "sub")
            .and_then(|attribute| attribute.value())
            .with_context(|| format!("user {username} has no sub attribute"))?
            .to_owned();
        Ok(Some(User {
            subject,
            status: user.user_status,
        }))
    }
}

/// What [`Identity`] needs to know of a user.
struct User {
    subject: String,
    status: Option<UserStatusType>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_passwords_meet_the_template_policy_and_differ() {
        let password = fresh_password();
        assert!(password.len() >= 12);
        assert!(password.chars().any(|c| c.is_ascii_lowercase()));
        assert!(password.chars().any(|c| c.is_ascii_uppercase()));
        assert!(password.chars().any(|c| c.is_ascii_digit()));
        assert!(password.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_ne!(password, fresh_password());
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let tokens = Tokens {
            access_token: "secret-access".into(),
            id_token: "secret-id".into(),
            refresh_token: Some("secret-refresh".into()),
            expires_in: Duration::from_secs(3600),
        };
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("3600"), "{shown}");
    }

    #[test]
    fn names_follow_the_stage() {
        assert_eq!(pool_name("dev"), "orderflow-dev-users");
        assert_eq!(client_name("dev"), "orderflow-dev-api");
    }
}
