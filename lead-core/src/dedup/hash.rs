//! The hashes of values and e-mail keys that frequencies, the key table
//! and the comparators share.

/// FNV-1a over the parts (a separator after each) and the SplitMix64
/// finalizer: deterministic across runs, unlike `RandomState`.
/// The hash [`NameFrequencies`](super::NameFrequencies) counts a single
/// value by.
pub(crate) fn hash_value(value: &str) -> u64 {
    hash_parts([value])
}

/// [`hash_value`] of text given as bytes (`hash_bytes(s.bytes()) ==
/// hash_value(s)`), for text that is read through a filter.
pub(crate) fn hash_bytes(bytes: impl Iterator<Item = u8>) -> u64 {
    finish(hash_part(FNV_OFFSET, bytes))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of one part and its separator, from state `h`.
fn hash_part(h: u64, bytes: impl Iterator<Item = u8>) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let h = bytes.fold(h, |h, byte| (h ^ u64::from(byte)).wrapping_mul(PRIME));
    (h ^ 0xff).wrapping_mul(PRIME)
}

pub(super) fn hash_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    finish(
        parts
            .into_iter()
            .fold(FNV_OFFSET, |h, part| hash_part(h, part.bytes())),
    )
}

/// The SplitMix64 finalizer, so nearby inputs spread over the whole range.
fn finish(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// [`hash_bytes`] of some text, in 32 bits.
pub(crate) fn text_hash(bytes: impl Iterator<Item = u8>) -> u32 {
    hash_bytes(bytes) as u32
}

/// The bytes of a local part that
/// [`compare_local_parts`](super::similarity::compare_local_parts)
/// compares (`.`, `_` and `-` left out), and that blocking keys a
/// distinctive one by.
pub(crate) fn compared_local_bytes(local: &str) -> impl Iterator<Item = u8> + '_ {
    local.bytes().filter(|c| !matches!(c, b'.' | b'_' | b'-'))
}

/// [`text_hash`] of what
/// [`compare_local_parts`](super::similarity::compare_local_parts) compares
/// of a local part.
pub(crate) fn local_part_hash(local: &str) -> u32 {
    text_hash(compared_local_bytes(local))
}
