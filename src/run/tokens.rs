//! The run's Token: the one in use, and the one login at a time that replaces it when a
//! row's answer says it expired. Turns read it before each attempt; a refused Token sends
//! one of them through [`Tokens::refresh`], the others find the new one when it is done.

use std::sync::{Arc, RwLock};

/// The Token in use, and the one login at a time that replaces it.
pub(super) struct Tokens {
    current: RwLock<CurrentToken>,
    pub(super) user_name: Option<String>,
    /// Held while logging in; remembers a failed login so that others do not retry it.
    login: tokio::sync::Mutex<Option<String>>,
}

#[derive(Clone)]
pub(super) struct CurrentToken {
    pub(super) generation: u64,
    pub(super) value: Arc<str>,
}

impl Tokens {
    pub(super) fn new(user_name: Option<String>) -> Tokens {
        Tokens {
            current: RwLock::new(CurrentToken {
                generation: 0,
                value: Arc::from(""),
            }),
            user_name,
            login: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) fn set(&self, token: String) {
        let mut current = self.current.write().expect("token lock");
        current.generation += 1;
        current.value = Arc::from(token);
    }

    pub(super) fn current(&self) -> CurrentToken {
        self.current.read().expect("token lock").clone()
    }

    pub(super) fn can_login(&self) -> bool {
        self.user_name.is_some()
    }

    /// Makes sure the Token is newer than `seen_generation`: logs in with `login` unless
    /// another row already did while this one waited.
    pub(super) async fn refresh<E: std::fmt::Display>(
        &self,
        seen_generation: u64,
        login: impl AsyncFnOnce(&str) -> Result<String, E>,
    ) -> Result<(), String> {
        let user_name = self.user_name.as_deref().ok_or("no --user-name to log in with")?;
        let mut failed = self.login.lock().await;
        if self.current().generation != seen_generation {
            return Ok(());
        }
        if let Some(error) = failed.as_ref() {
            return Err(error.clone());
        }
        match login(user_name).await {
            Ok(token) => {
                tracing::info!(user_name, "logged in again for a fresh Token");
                self.set(token);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(user_name, %error, "login failed");
                *failed = Some(error.to_string());
                Err(error.to_string())
            }
        }
    }
}
