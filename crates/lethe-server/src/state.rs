//! What every handler shares: the engine, where erasure verification looks,
//! the options, and the cache of authenticated tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lethe_erasure::Places;
use lethe_store::{Caller, Engine};

use crate::ServeOptions;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub places: Arc<Places>,
    pub options: Arc<ServeOptions>,
    /// SHA-256 of a secret -> the token and when it was looked up. Saves a
    /// database round trip per request; entries live `token_cache`.
    pub(crate) tokens: Arc<Mutex<HashMap<String, (Caller, Instant)>>>,
}

impl AppState {
    pub fn new(engine: Engine, places: Places, options: ServeOptions) -> AppState {
        AppState {
            engine: Arc::new(engine),
            places: Arc::new(places),
            options: Arc::new(options),
            tokens: Arc::default(),
        }
    }
}
