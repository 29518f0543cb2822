//! Small helpers the channels share: the clock, random bytes, lowercase hex.

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `N` random bytes from the system RNG; `None` (logged) when it fails.
pub(crate) fn random<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        tracing::error!("system RNG failed");
        return None;
    }
    Some(b)
}

/// `N` random bytes as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> Option<String> {
    random::<N>().map(hex::encode)
}
