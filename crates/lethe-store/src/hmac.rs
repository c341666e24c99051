//! Keyed hashes (HMAC-SHA256) of personal values, computed the same way in
//! Rust and inside the database (see `lethe_sql::Dialect::hmac`): erasure
//! keeps hashes of a subject's original values to look for them later,
//! the `hash` PII rule replaces values with them, and the erasure ledger
//! names subjects by them. Keyed with the database's own secret, so a
//! guessed value cannot be checked without it.
//!
//! SQLite has no SHA-256 function: [`register_sqlite`] adds `lethe_hmac(ipad,
//! opad, value)` to every connection the store opens.

use sha2::{Digest, Sha256};

/// SHA-256's block size: HMAC pads its key to it.
const BLOCK: usize = 64;

/// The HMAC key of a database secret: the bytes its hex encodes (the
/// secret Lethe creates is 64 hex digits), or its text.
fn key_bytes(secret: &str) -> Vec<u8> {
    let raw = hex::decode(secret).unwrap_or_else(|_| secret.as_bytes().to_vec());
    if raw.len() > BLOCK {
        Sha256::digest(&raw).to_vec()
    } else {
        raw
    }
}

/// The inner and outer pads of `secret` (key XOR 0x36, key XOR 0x5c), as
/// bytes.
fn pads(secret: &str) -> ([u8; BLOCK], [u8; BLOCK]) {
    let k = key_bytes(secret);
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for (i, b) in k.iter().enumerate() {
        ipad[i] ^= b;
        opad[i] ^= b;
    }
    (ipad, opad)
}

/// The pads as hex, the two values statements bind for `Dialect::hmac`.
pub fn pads_hex(secret: &str) -> (String, String) {
    let (i, o) = pads(secret);
    (hex::encode(i), hex::encode(o))
}

fn with_pads(ipad: &[u8], opad: &[u8], value: &[u8]) -> String {
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(value)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize(),
    )
}

/// HMAC-SHA256 of `value` keyed by `secret`, as 64 hex digits.
pub fn hmac_hex(secret: &str, value: &str) -> String {
    let (i, o) = pads(secret);
    with_pads(&i, &o, value.as_bytes())
}

/// Registers `lethe_hmac(ipad_hex, opad_hex, value)` on a SQLite connection.
/// NULL in, NULL out; other values are hashed as their text.
pub(crate) fn register_sqlite(db: *mut libsqlite3_sys::sqlite3) -> i32 {
    use libsqlite3_sys as ffi;
    // SAFETY: `db` is an open connection handle from sqlx, used on this
    // thread only for the call; the name is NUL-terminated and static; no
    // user data pointer is passed, so nothing needs destroying.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"lethe_hmac".as_ptr(),
            3,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut(),
            Some(sqlite_hmac),
            None,
            None,
            None,
        )
    }
}

/// The bytes of argument `i` as text; `None` for NULL.
///
/// # Safety
/// `args` must be the argument array SQLite passed to the function, with
/// more than `i` entries.
unsafe fn arg<'a>(args: *mut *mut libsqlite3_sys::sqlite3_value, i: usize) -> Option<&'a [u8]> {
    use libsqlite3_sys as ffi;
    // SAFETY: guaranteed by the caller; SQLite keeps the text alive until
    // the function returns, and `&'a` does not outlive that in `sqlite_hmac`.
    unsafe {
        let v = *args.add(i);
        if ffi::sqlite3_value_type(v) == ffi::SQLITE_NULL {
            return None;
        }
        let ptr = ffi::sqlite3_value_text(v);
        let len = ffi::sqlite3_value_bytes(v);
        if ptr.is_null() {
            return Some(&[]);
        }
        Some(std::slice::from_raw_parts(ptr, len as usize))
    }
}

unsafe extern "C" fn sqlite_hmac(
    ctx: *mut libsqlite3_sys::sqlite3_context,
    n: i32,
    args: *mut *mut libsqlite3_sys::sqlite3_value,
) {
    use libsqlite3_sys as ffi;
    // SAFETY: SQLite calls this with `n` arguments in `args` (registered
    // with 3) and a valid context; the result text is copied by SQLite
    // (SQLITE_TRANSIENT) before `out` is dropped.
    unsafe {
        if n != 3 {
            ffi::sqlite3_result_error(ctx, c"lethe_hmac takes 3 arguments".as_ptr(), -1);
            return;
        }
        let (Some(ipad), Some(opad)) = (arg(args, 0), arg(args, 1)) else {
            ffi::sqlite3_result_error(ctx, c"lethe_hmac: NULL key pad".as_ptr(), -1);
            return;
        };
        let (Ok(ipad), Ok(opad)) = (hex::decode(ipad), hex::decode(opad)) else {
            ffi::sqlite3_result_error(ctx, c"lethe_hmac: key pads must be hex".as_ptr(), -1);
            return;
        };
        let Some(value) = arg(args, 2) else {
            ffi::sqlite3_result_null(ctx);
            return;
        };
        let out = with_pads(&ipad, &opad, value);
        ffi::sqlite3_result_text(
            ctx,
            out.as_ptr().cast(),
            out.len() as i32,
            ffi::SQLITE_TRANSIENT(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_case_2() {
        // Key "Jefe" (not hex, so its text), data "what do ya want for nothing?".
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_hex_secret_keys_with_its_bytes() {
        let (i, _) = pads_hex("0102");
        assert!(i.starts_with("3734"));
    }
}
