//! Fuzz target: arbitrary bytes as a model's Server-Sent Events stream, through the model
//! client's SSE parser. The events must be the same however the bytes are split into network
//! chunks: whole, one byte at a time, and a few splits drawn from a generator seeded with the
//! input (so the fuzzer reaches new splits as it mutates the bytes). Every dispatched event is
//! line-free where it must be: no line end in a name, no `\r` in data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use study_mode_api::tutor::model::sse::{LineTooLong, SseEvent, SseParser};

fuzz_target!(|data: &[u8]| {
    let whole = events(data, &[]);
    if let Ok(events) = &whole {
        for e in events {
            assert!(!e.data.contains('\r'), "{e:?}");
            let name = e.event.as_deref().unwrap_or_default();
            assert!(!name.contains(['\r', '\n']), "{e:?}");
        }
    }
    let every_byte: Vec<usize> = (1..data.len()).collect();
    assert_eq!(events(data, &every_byte), whole, "fed one byte at a time");
    let mut rng = XorShift::seeded(data);
    for _ in 0..4 {
        let mut cuts: Vec<usize> = (0..rng.below(9))
            .map(|_| rng.below(data.len() + 1))
            .collect();
        cuts.sort_unstable();
        assert_eq!(events(data, &cuts), whole, "split at {cuts:?}");
    }
});

/// The events of `data` fed to one parser in chunks ending at each of `cuts` (sorted).
fn events(data: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, LineTooLong> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(&[data.len()]) {
        out.extend(parser.push(&data[last..cut])?);
        last = cut;
    }
    Ok(out)
}

/// A tiny deterministic generator (xorshift64), seeded with an FNV-1a hash of the input.
struct XorShift(u64);

impl XorShift {
    fn seeded(data: &[u8]) -> Self {
        let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self(hash | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
