//! Fuzzing the metadata stripper (issue 16): it walks strangers' containers, so on damaged
//! real files it must never panic, never grow a file beyond the one EXIF block it may add, and
//! reach a fixed point (stripping its own output changes nothing, so a stored photo is stable).

use ocular_image::strip_metadata;
use proptest::prelude::*;

use crate::common::bytes;

/// A real file of each accepted format (some with orientation EXIF added), with bytes
/// overwritten — mostly in the first 4 KiB, where the segment and chunk headers are — maybe
/// truncated.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let files = ["china.jpg", "china_draft.png", "chelsea.webp", "animated.webp", "rgba.png", "coffee.png"];
    (
        0..files.len(),
        prop::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(move |(f, flips, cut)| {
            let mut data = bytes(files[f]);
            for (head, at, byte) in flips {
                let span = if head { data.len().min(4096) } else { data.len() };
                let i = at.index(span);
                data[i] = byte;
            }
            if let Some(cut) = cut {
                data.truncate(cut.index(data.len()).max(16));
            }
            data
        })
}

fn check(data: &[u8]) {
    if let Ok(out) = strip_metadata(data) {
        assert!(out.len() <= data.len() + 64, "grew from {} to {} bytes", data.len(), out.len());
        let again = strip_metadata(&out).expect("its own output is a container it can walk");
        assert!(again == out, "not a fixed point ({} -> {} bytes)", out.len(), again.len());
    }
}

/// 256 cases in CI; `OCULAR_FUZZ_CASES=100000` for a longer pass on a quiet machine.
fn cases() -> u32 {
    std::env::var("OCULAR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn damaged_real_images_never_panic_and_strip_to_a_fixed_point(data in damaged()) {
        check(&data);
    }

    #[test]
    fn noise_behind_each_magic_never_panics(
        magic in 0usize..3,
        tail in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let head: &[u8] = match magic {
            0 => b"\xFF\xD8\xFF",
            1 => b"\x89PNG\r\n\x1a\n",
            _ => b"RIFF\x00\x01\x00\x00WEBP",
        };
        let mut data = head.to_vec();
        data.extend_from_slice(&tail);
        check(&data);
    }
}
