//! One dynamic-Huffman deflate block of literals only (RFC 1951), for a PNG strip's filtered
//! bytes: no matches, so no strip refers to another's bytes, and the coding loop is a table read,
//! a shift and an or a byte, with the bit buffer in a register.
//!
//! On Paeth-filtered photos, literals alone come within 1% of fdeflate's literals and runs (a
//! 256-px and a 12 MP photo measured, `bench/REPORT.md`): the residuals have no long repeats, and
//! the time goes into the bits (a 256-px photo's 197 KB in 0.15 ms, filter and counts included).

/// Literal/length symbols sent: the 256 bytes and end-of-block.
const LITERALS: usize = 257;
const END_OF_BLOCK: usize = 256;
/// The longest literal code: 4 codes (56 bits) and the at most 7 bits left after a flush fit the
/// 64-bit buffer, so the loop flushes once every 4 bytes.
const MAX_LITERAL_BITS: u32 = 14;
/// The code-length code's own limit (RFC 1951: 7 bits).
const MAX_LENGTH_BITS: u32 = 7;
/// Order in which the code-length code's lengths are sent.
const LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Counts of each byte value, kept in four tables so that neighbouring equal bytes do not wait on
/// one another's increment.
pub(super) struct Histogram([[u32; 256]; 4]);

impl Histogram {
    pub(super) fn new() -> Self {
        Self([[0; 256]; 4])
    }

    pub(super) fn add(&mut self, bytes: &[u8]) {
        let mut quads = bytes.chunks_exact(4);
        for q in &mut quads {
            for (table, &b) in self.0.iter_mut().zip(q) {
                table[b as usize] += 1;
            }
        }
        for &b in quads.remainder() {
            self.0[0][b as usize] += 1;
        }
    }

    fn counts(&self) -> [u64; 256] {
        std::array::from_fn(|i| self.0.iter().map(|t| u64::from(t[i])).sum())
    }
}

/// The literal code of a strip, from the counts of its bytes (or of a sample of them): what it
/// costs and how to write it. Every byte value gets a code (counted once more than it was seen),
/// so that a sample's code writes any byte.
pub(super) struct LiteralCode {
    lengths: [u8; LITERALS],
    /// Each symbol's code, bit-reversed (deflate sends Huffman codes from their top bit into a
    /// stream filled from the low bit).
    codes: [u32; LITERALS],
    /// The block's header (code-length code, then the lengths), as (bits, count) pieces.
    header: Vec<(u32, u32)>,
    /// Bits of the block beside its bytes: block type, header, end-of-block.
    fixed_bits: u64,
    /// Bits of the counted bytes, and their count.
    counted_bits: u64,
    counted: u64,
}

impl LiteralCode {
    pub(super) fn new(histogram: &Histogram) -> Self {
        let counts = histogram.counts();
        let mut freq = [1u64; LITERALS];
        for (f, &c) in freq.iter_mut().zip(&counts) {
            *f += c;
        }
        let lengths: [u8; LITERALS] = huffman_lengths(&freq, MAX_LITERAL_BITS).try_into().expect("257 lengths");
        let codes: [u32; LITERALS] = canonical_codes(&lengths).try_into().expect("257 codes");

        // The lengths sent: the 257 literal/length codes, then two distance codes of one bit (a
        // complete code that no symbol uses; some inflaters refuse an incomplete one).
        let mut sent = lengths.to_vec();
        sent.extend([1, 1]);
        let mut length_freq = [0u64; 19];
        for &l in &sent {
            length_freq[l as usize] += 1;
        }
        let length_lengths = huffman_lengths(&length_freq, MAX_LENGTH_BITS);
        let length_codes = canonical_codes(&length_lengths);
        let mut header = vec![
            (0, 5),  // HLIT: 257 literal/length codes
            (1, 5),  // HDIST: 2 distance codes
            (15, 4), // HCLEN: all 19 code-length code lengths
        ];
        header.extend(LENGTH_ORDER.iter().map(|&s| (u32::from(length_lengths[s]), 3)));
        header.extend(sent.iter().map(|&l| (length_codes[l as usize], u32::from(length_lengths[l as usize]))));

        let fixed_bits = 3 + header.iter().map(|&(_, n)| u64::from(n)).sum::<u64>() + u64::from(lengths[END_OF_BLOCK]);
        let counted_bits = counts.iter().zip(&lengths).map(|(&c, &l)| c * u64::from(l)).sum();
        Self { lengths, codes, header, fixed_bits, counted_bits, counted: counts.iter().sum() }
    }

    /// Bytes `BitWriter` writes for a block of `total` bytes like the counted ones (exact when
    /// they are the counted ones): its bits padded to a byte, and for a block that is not the
    /// last, the sync flush's 3 bits and 4 bytes.
    pub(super) fn block_bytes(&self, total: u64, last: bool) -> usize {
        let data = u128::from(self.counted_bits) * u128::from(total) / u128::from(self.counted.max(1));
        let bits = self.fixed_bits + data as u64;
        if last {
            bits.div_ceil(8) as usize
        } else {
            (bits + 3).div_ceil(8) as usize + 4
        }
    }
}

/// Writes deflate bits from the low end of each byte into a buffer.
pub(super) struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer into `out`, which must have 8 bytes of room past the last byte written (each
    /// flush stores the whole buffer).
    pub(super) fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: 0, acc: 0, n: 0 }
    }

    #[inline(always)]
    fn flush(&mut self) {
        self.out[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        // n < 64: at most 7 whole bytes leave the buffer.
        let whole = self.n / 8;
        self.pos += whole as usize;
        self.acc >>= whole * 8;
        self.n -= whole * 8;
    }

    /// `count` (at most 32) low bits of `bits`.
    #[inline(always)]
    fn put(&mut self, bits: u32, count: u32) {
        self.acc |= u64::from(bits) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.flush();
        }
    }

    /// The block's start: BFINAL, BTYPE 2 (dynamic Huffman) and the code.
    pub(super) fn start_block(&mut self, code: &LiteralCode, last: bool) {
        self.put(u32::from(last) | 2 << 1, 3);
        for &(bits, count) in &code.header {
            self.put(bits, count);
        }
    }

    /// Bytes of the buffer not yet written (the 8-byte stores need 8 of them past the last byte).
    pub(super) fn room(&self) -> usize {
        self.out.len() - self.pos
    }

    /// The literals of `bytes` (`room` must be at least 2 bytes a byte and 16 more).
    pub(super) fn literals(&mut self, code: &LiteralCode, bytes: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("bmi2") {
            // SAFETY: the CPU has BMI2 (checked just above).
            unsafe { self.literals_bmi2(code, bytes) };
            return;
        }
        self.literals_with(code, bytes);
    }

    /// `literals` compiled for BMI2: its shifts by a register are one instruction, not three.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "bmi2")]
    unsafe fn literals_bmi2(&mut self, code: &LiteralCode, bytes: &[u8]) {
        self.literals_with(code, bytes);
    }

    #[inline(always)]
    fn literals_with(&mut self, code: &LiteralCode, bytes: &[u8]) {
        let (codes, lengths) = (&code.codes, &code.lengths);
        self.flush();
        let mut quads = bytes.chunks_exact(4);
        for q in &mut quads {
            // At most 7 bits are pending here: four codes of at most 14 bits fit.
            for &b in q {
                self.acc |= u64::from(codes[b as usize]) << self.n;
                self.n += u32::from(lengths[b as usize]);
            }
            self.flush();
        }
        for &b in quads.remainder() {
            self.put(codes[b as usize], u32::from(lengths[b as usize]));
        }
    }

    /// End-of-block; for a block that is not the stream's last, a sync flush after it (an empty
    /// stored block) so that the next block starts on a byte. Returns the bytes written.
    pub(super) fn end_block(mut self, code: &LiteralCode, last: bool) -> usize {
        self.put(code.codes[END_OF_BLOCK], u32::from(code.lengths[END_OF_BLOCK]));
        if !last {
            self.put(0, 3); // BFINAL 0, BTYPE 0 (stored)
        }
        // Pad to a byte.
        self.n = self.n.div_ceil(8) * 8;
        self.flush();
        if !last {
            self.out[self.pos..self.pos + 4].copy_from_slice(&[0, 0, 0xff, 0xff]); // LEN 0, NLEN !0
            self.pos += 4;
        }
        self.pos
    }
}

/// Huffman code lengths of at most `limit` bits for `freq` (0 for unused symbols). Where the
/// optimal code is deeper, the counts are halved (kept above 0) and the code rebuilt: it
/// flattens toward a balanced tree, so it ends. At least two symbols get a code (a code of one
/// symbol is not complete).
fn huffman_lengths(freq: &[u64], limit: u32) -> Vec<u8> {
    assert!(freq.len() <= 1 << limit, "{} symbols do not fit codes of {limit} bits", freq.len());
    let mut f = freq.to_vec();
    let used = f.iter().filter(|&&x| x > 0).count();
    for x in f.iter_mut().filter(|x| **x == 0).take(2usize.saturating_sub(used)) {
        *x = 1;
    }
    loop {
        let lengths = optimal_lengths(&f);
        if lengths.iter().all(|&l| u32::from(l) <= limit) {
            return lengths;
        }
        for x in f.iter_mut().filter(|x| **x > 0) {
            *x = x.div_ceil(2);
        }
    }
}

/// Optimal (unlimited) Huffman code lengths: leaves in order of weight, internal nodes made in
/// order of weight too, so two queues give the two lightest at each step.
fn optimal_lengths(freq: &[u64]) -> Vec<u8> {
    let mut leaves: Vec<(u64, usize)> = freq.iter().enumerate().filter(|(_, &w)| w > 0).map(|(s, &w)| (w, s)).collect();
    leaves.sort_unstable();
    let n = leaves.len();
    let mut weight: Vec<u64> = leaves.iter().map(|&(w, _)| w).chain(std::iter::repeat_n(0, n - 1)).collect();
    let mut parent = vec![0usize; 2 * n - 1];
    let (mut leaf, mut inner) = (0, n);
    for node in n..2 * n - 1 {
        let mut lightest = || {
            let take_leaf = leaf < n && (inner >= node || weight[leaf] <= weight[inner]);
            let pick = if take_leaf { leaf } else { inner };
            if take_leaf {
                leaf += 1;
            } else {
                inner += 1;
            }
            pick
        };
        let (x, y) = (lightest(), lightest());
        weight[node] = weight[x] + weight[y];
        parent[x] = node;
        parent[y] = node;
    }
    // Parents come after their children: depths from the root (the last node) down.
    let mut depth = vec![0u8; 2 * n - 1];
    for node in (0..2 * n - 2).rev() {
        depth[node] = depth[parent[node]] + 1;
    }
    let mut lengths = vec![0u8; freq.len()];
    for (i, &(_, s)) in leaves.iter().enumerate() {
        lengths[s] = depth[i];
    }
    lengths
}

/// The canonical codes of RFC 1951 3.2.2 for `lengths`, bit-reversed for sending.
fn canonical_codes(lengths: &[u8]) -> Vec<u32> {
    let mut count = [0u32; 16];
    for &l in lengths.iter().filter(|&&l| l > 0) {
        count[l as usize] += 1;
    }
    let mut next = [0u32; 16];
    let mut code = 0;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            c.reverse_bits() >> (32 - u32::from(l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lengths: &[u8]) -> f64 {
        lengths.iter().filter(|&&l| l > 0).map(|&l| 0.5f64.powi(l as i32)).sum()
    }

    #[test]
    fn lengths_are_complete_and_within_the_limit() {
        // Skewed (a deep optimal code), flat, two symbols, one symbol, geometric.
        let mut skewed = vec![0u64; 257];
        for (i, f) in skewed.iter_mut().enumerate() {
            *f = 1 << (i % 40);
        }
        let flat = vec![7u64; 257];
        let mut two = vec![0u64; 257];
        two[3] = 1000;
        two[256] = 1;
        let mut one = vec![0u64; 19];
        one[8] = 257;
        let geometric: Vec<u64> = (0..257).map(|i| (1u64 << 40) >> (i / 6).min(40)).collect();
        for (freq, limit) in [(&skewed, 14), (&flat, 14), (&two, 14), (&one, 7), (&geometric, 14)] {
            let l = huffman_lengths(freq, limit);
            assert!(l.iter().all(|&x| u32::from(x) <= limit));
            assert!((kraft(&l) - 1.0).abs() < 1e-12, "not complete: {}", kraft(&l));
            assert!(freq.iter().zip(&l).all(|(&f, &x)| f == 0 || x > 0), "a used symbol has no code");
        }
        // Optimal when the limit does not bite: counts 1, 1, 2, 4 give lengths 3, 3, 2, 1.
        assert_eq!(huffman_lengths(&[1, 1, 2, 4], 15), vec![3, 3, 2, 1]);
    }

    #[test]
    fn canonical_codes_are_rfc_1951s_example() {
        // RFC 1951 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give 010 011 100 101 110 00 1110 1111.
        let codes = canonical_codes(&[3, 3, 3, 3, 3, 2, 4, 4]);
        let want = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        let lens = [3, 3, 3, 3, 3, 2, 4, 4];
        for ((&c, &w), &l) in codes.iter().zip(&want).zip(&lens) {
            assert_eq!(c, (w as u32).reverse_bits() >> (32 - l));
        }
    }

    /// A block of `data` made by this module, inflated by another decoder.
    fn inflate_block(data: &[u8], last: bool) -> Vec<u8> {
        let mut h = Histogram::new();
        h.add(data);
        let code = LiteralCode::new(&h);
        let mut out = vec![0u8; code.block_bytes(data.len() as u64, last) + 16];
        let mut w = BitWriter::new(&mut out);
        w.start_block(&code, last);
        // In uneven pieces, as rows come.
        for piece in data.chunks(7) {
            w.literals(&code, piece);
        }
        let n = w.end_block(&code, last);
        assert_eq!(n, code.block_bytes(data.len() as u64, last));
        out.truncate(n);
        if !last {
            // A final empty stored block ends the stream.
            out.extend([1, 0, 0, 0xff, 0xff]);
        }
        let mut zlib = vec![0x78, 0x01];
        zlib.extend(&out);
        zlib.extend(simd_adler32::adler32(&data).to_be_bytes());
        fdeflate::decompress_to_vec(&zlib).expect("inflates")
    }

    #[test]
    fn blocks_inflate_to_their_bytes() {
        let mut s = 9u32;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect();
        let residuals: Vec<u8> = noise.iter().map(|&x| ((x as i8) / 16) as u8).collect();
        for data in [&noise[..], &residuals[..], &[0u8; 1000][..], &[5u8][..], &noise[..3]] {
            for last in [true, false] {
                assert_eq!(inflate_block(data, last), data);
            }
        }
    }
}
