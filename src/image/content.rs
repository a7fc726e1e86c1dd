//! Deterministic file sizes and contents for generated images.
//!
//! Owns the seeding scheme and the generators. Every draw comes from a ChaCha8
//! stream keyed by sha256 of (spec seed, layer, group, file index, purpose),
//! so a file's size and bytes depend on nothing else: changing one group (its
//! count, sizes, content) leaves every other group's files byte-identical.
//! Output is also independent of how callers read it (generators fill fixed
//! 64 KiB blocks), so the two layer forms and tests see the same bytes.
//!
//! Does not know about tar, layers or registries.
use super::spec::{Content, SizeSpec};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use statrs::distribution::{ContinuousCDF, LogNormal};
use std::io::{self, Read};

/// Version tag mixed into every seed: bump it if a generator changes, so old
/// and new digests never collide silently.
const SEED_DOMAIN: &[u8] = b"advisor/image/content/v1\0";
/// Generators produce this many bytes at a time (a multiple of 4, so the
/// ChaCha stream is consumed in whole words whatever the reader asks for).
const BLOCK: usize = 64 << 10;

/// Which generated file: indices in the spec (layer counts user layers only,
/// so adding or removing the base layer changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub seed: u64,
    pub layer: u32,
    pub group: u32,
    pub index: u64,
}

#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum Purpose {
    Size = 1,
    Content = 2,
}

impl FileKey {
    fn rng(&self, purpose: Purpose) -> ChaCha8Rng {
        let mut h = Sha256::new();
        h.update(SEED_DOMAIN);
        h.update(self.seed.to_le_bytes());
        h.update(self.layer.to_le_bytes());
        h.update(self.group.to_le_bytes());
        h.update(self.index.to_le_bytes());
        h.update([purpose as u8]);
        ChaCha8Rng::from_seed(h.finalize().into())
    }

    /// The file's size under `spec`.
    pub fn size(&self, spec: &SizeSpec) -> u64 {
        match spec {
            SizeSpec::Fixed(s) => s.0,
            SizeSpec::Range { min, max } => {
                let span = max.0 - min.0;
                if span == u64::MAX {
                    return self.rng(Purpose::Size).next_u64();
                }
                // Lemire's multiply-shift: uniform in [0, span] without modulo bias
                // worth mentioning (< span / 2^64).
                let x = self.rng(Purpose::Size).next_u64();
                min.0 + ((u128::from(x) * (u128::from(span) + 1)) >> 64) as u64
            }
            SizeSpec::Lognormal { lognormal: l } => {
                let mut rng = self.rng(Purpose::Size);
                // u in (0, 1): 53 random bits, offset by half a step.
                let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let v = if l.sigma == 0.0 {
                    l.median.0 as f64
                } else {
                    match LogNormal::new((l.median.0 as f64).ln(), l.sigma) {
                        Ok(d) => d.inverse_cdf(u),
                        // The spec check bounds median and sigma; unreachable in practice.
                        Err(_) => l.median.0 as f64,
                    }
                };
                let lo = l.min.map_or(0, |m| m.0);
                let hi = l.max.map_or(u64::MAX, |m| m.0);
                let v = if v.is_finite() { v.round() } else { f64::MAX };
                // `as` saturates: huge draws become u64::MAX, then the clamp.
                (v as u64).clamp(lo, hi)
            }
        }
    }

    /// A reader of the file's `size` bytes of `content`.
    pub fn reader(&self, content: Content, size: u64) -> Generated {
        Generated::new(content, self.rng(Purpose::Content), size)
    }
}

/// Words of the `text` content: identifiers and keywords of a source tree.
/// With about 12 bits of choice per word and line structure, gzip -6 reaches
/// about 3:1 (unit test below).
const WORDS: &[&str] = &[
    "self",
    "return",
    "import",
    "from",
    "def",
    "class",
    "if",
    "else",
    "elif",
    "for",
    "while",
    "in",
    "not",
    "and",
    "or",
    "None",
    "True",
    "False",
    "try",
    "except",
    "raise",
    "with",
    "as",
    "yield",
    "lambda",
    "pass",
    "break",
    "continue",
    "assert",
    "global",
    "value",
    "result",
    "config",
    "request",
    "response",
    "data",
    "index",
    "layer",
    "chunk",
    "offset",
    "size",
    "buffer",
    "cache",
    "fetch",
    "model",
    "tensor",
    "weight",
    "shape",
    "dtype",
    "device",
    "batch",
    "token",
    "vocab",
    "logits",
    "attention",
    "hidden",
    "state",
    "params",
    "args",
    "kwargs",
    "path",
    "file",
    "name",
    "key",
    "item",
    "items",
    "list",
    "dict",
    "str",
    "int",
    "float",
    "bytes",
    "len",
    "range",
    "print",
    "open",
    "read",
    "write",
    "close",
    "format",
    "append",
    "extend",
    "update",
    "get",
    "set",
    "init",
    "main",
    "run",
    "start",
    "stop",
    "ready",
    "error",
    "warning",
    "info",
    "debug",
    "logger",
    "time",
    "count",
    "total",
    "step",
    "=",
    "==",
    "+=",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    ".",
    "->",
    "0",
    "1",
    "2",
    "None:",
    "self.",
    "np",
    "torch",
    "os",
    "sys",
    "json",
    "re",
    "math",
    "numpy",
    "array",
    "zeros",
    "ones",
    "matmul",
    "softmax",
    "norm",
    "mean",
    "std",
    "max",
    "min",
    "sum",
    "exp",
    "log",
    "sqrt",
    "x",
    "y",
    "i",
    "j",
    "k",
    "n",
    "m",
    "a",
    "b",
    "c",
];

/// A generated file's bytes.
pub struct Generated {
    content: Content,
    rng: ChaCha8Rng,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
    bits: u64,
    nbits: u32,
}

impl Generated {
    fn new(content: Content, rng: ChaCha8Rng, size: u64) -> Self {
        Generated {
            content,
            rng,
            left: size,
            buf: Vec::new(),
            pos: 0,
            bits: 0,
            nbits: 0,
        }
    }

    fn take_bits(&mut self, n: u32) -> u64 {
        if self.nbits < n {
            self.bits = self.rng.next_u64();
            self.nbits = 64;
        }
        let v = self.bits & ((1 << n) - 1);
        self.bits >>= n;
        self.nbits -= n;
        v
    }

    fn refill(&mut self) {
        self.pos = 0;
        match self.content {
            Content::Random => {
                self.buf.resize(BLOCK, 0);
                self.rng.fill_bytes(&mut self.buf);
            }
            Content::Zeros => {
                self.buf.clear();
                self.buf.resize(BLOCK, 0);
            }
            Content::Weights => {
                // Little-endian bf16: a random low byte (mantissa), a high
                // byte of sign and one of four exponents near 1.0.
                self.buf.resize(BLOCK, 0);
                self.rng.fill_bytes(&mut self.buf);
                for pair in self.buf.chunks_exact_mut(2) {
                    let r = pair[1];
                    pair[1] = (r & 0x80) | (0x3c + (r & 0x03));
                }
            }
            Content::Text => {
                // Whole lines until the block is full: the stream is the same
                // concatenation of lines however it is cut.
                self.buf.clear();
                while self.buf.len() < BLOCK {
                    let indent = self.take_bits(2) as usize;
                    for _ in 0..indent {
                        self.buf.extend_from_slice(b"    ");
                    }
                    let words = 2 + self.take_bits(3) as usize;
                    for w in 0..words {
                        if w > 0 {
                            self.buf.push(b' ');
                        }
                        let i = self.take_bits(8) as usize % WORDS.len();
                        self.buf.extend_from_slice(WORDS[i].as_bytes());
                    }
                    self.buf.push(b'\n');
                }
            }
        }
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            self.refill();
        }
        let n = out
            .len()
            .min(self.buf.len() - self.pos)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::spec::{LognormalSpec, Size};
    use std::io::Write;

    fn key(index: u64) -> FileKey {
        FileKey {
            seed: 1,
            layer: 0,
            group: 0,
            index,
        }
    }

    fn bytes(k: FileKey, c: Content, n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        k.reader(c, n).read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn content_does_not_depend_on_read_sizes() {
        for c in [
            Content::Random,
            Content::Text,
            Content::Zeros,
            Content::Weights,
        ] {
            let whole = bytes(key(3), c, 200_003);
            assert_eq!(whole.len(), 200_003);
            let mut r = key(3).reader(c, 200_003);
            let mut pieces = Vec::new();
            let mut step = 1;
            loop {
                let mut b = vec![0u8; step];
                let n = r.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                pieces.extend_from_slice(&b[..n]);
                step = step * 7 % 5003 + 1;
            }
            assert!(pieces == whole, "{c:?}");
        }
    }

    #[test]
    fn keys_select_independent_streams() {
        let a = bytes(key(0), Content::Random, 64);
        assert_eq!(a, bytes(key(0), Content::Random, 64));
        assert_ne!(a, bytes(key(1), Content::Random, 64));
        let other_group = FileKey { group: 1, ..key(0) };
        assert_ne!(a, bytes(other_group, Content::Random, 64));
        let other_seed = FileKey { seed: 2, ..key(0) };
        assert_ne!(a, bytes(other_seed, Content::Random, 64));
        // A prefix is a prefix: size does not change the stream.
        assert_eq!(
            bytes(key(0), Content::Text, 1000)[..],
            bytes(key(0), Content::Text, 5000)[..1000]
        );
    }

    fn gzip_ratio(data: &[u8]) -> f64 {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        data.len() as f64 / e.finish().unwrap().len() as f64
    }

    #[test]
    fn compressibility_is_as_documented() {
        let n = 4 << 20;
        let random = gzip_ratio(&bytes(key(0), Content::Random, n));
        let text = gzip_ratio(&bytes(key(0), Content::Text, n));
        let zeros = gzip_ratio(&bytes(key(0), Content::Zeros, n));
        let weights = gzip_ratio(&bytes(key(0), Content::Weights, n));
        assert!((0.99..1.01).contains(&random), "random {random}");
        assert!((1.1..1.4).contains(&weights), "weights {weights}");
        assert!((2.6..3.6).contains(&text), "text {text}");
        assert!(zeros > 500.0, "zeros {zeros}");
        let t = bytes(key(0), Content::Text, 4096);
        assert!(t.iter().all(|b| b.is_ascii()), "text is ASCII");
    }

    #[test]
    fn sizes_are_seeded_and_follow_the_spec() {
        let range = SizeSpec::Range {
            min: Size(10),
            max: Size(20),
        };
        let draws: Vec<u64> = (0..2000).map(|i| key(i).size(&range)).collect();
        assert!(draws.iter().all(|d| (10..=20).contains(d)));
        assert!(
            draws.contains(&10) && draws.contains(&20),
            "both ends reachable"
        );
        assert_eq!(
            draws,
            (0..2000).map(|i| key(i).size(&range)).collect::<Vec<_>>()
        );
        let ln = SizeSpec::Lognormal {
            lognormal: LognormalSpec {
                median: Size(8192),
                sigma: 1.0,
                min: Some(Size(1)),
                max: Some(Size(1 << 20)),
            },
        };
        let mut d: Vec<u64> = (0..4001).map(|i| key(i).size(&ln)).collect();
        d.sort_unstable();
        let median = d[2000] as f64;
        assert!((7000.0..9500.0).contains(&median), "median {median}");
        assert!(d[0] >= 1 && d[4000] <= 1 << 20);
        // About 16 % of draws lie above median · e^sigma.
        let above = d
            .iter()
            .filter(|&&x| x as f64 > 8192.0 * 1f64.exp())
            .count();
        assert!((500..800).contains(&above), "{above}");
        assert_eq!(key(5).size(&SizeSpec::Fixed(Size(77))), 77);
    }
}
