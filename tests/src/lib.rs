//! Shared helpers for the cross-crate integration and end-to-end suites.

pub mod fake_kube;
pub mod vm;

/// `n` bytes of a pseudo-random sequence (xorshift) that does not repeat, different per
/// seed: test buffers whose every byte is checked (maxData).
pub fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
