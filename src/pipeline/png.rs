//! PNG writer for 8-bit pixels that filters and compresses horizontal strips of the image in
//! parallel: one zlib stream made of the strips' raw deflate output, one IDAT chunk a strip.
//!
//! Every row gets the Paeth filter: on photos it is the filter the image crate's adaptive choice
//! picks for nearly every row (same size within 0.1% on real photos, a few % larger on flat
//! synthetic grain), at a third of the cost of trying four filters. A row's filter reads the row
//! above even in another strip: all rows are there before encoding.
//!
//! A strip's filtered rows go through fdeflate, the deflate of the image crate's
//! `CompressionType::Fast`: one dynamic-Huffman block of literals and runs at distance 1, so no
//! strip refers to another's bytes. fdeflate writes a whole zlib stream; its block is kept, and
//! except in the last strip its BFINAL bit is cleared and a sync flush (an empty stored block)
//! appended so that the next strip's block starts on a byte. That needs the block's end, which
//! fdeflate only pads with zeros: its end-of-block code ends with a 1 bit, so the block ends at
//! the highest set bit of its last byte. Both that and the one final dynamic block are checked
//! on every strip; a strip that fails the check (a future fdeflate) or that fdeflate would make
//! larger than stored blocks is written as stored blocks of unfiltered rows, as the image crate
//! falls back for a whole image. The stream's Adler-32 is combined from the strips'.
//!
//! A strip has at least `PAR_MIN_PIXELS` pixels, so smaller images are one strip, encoded on the
//! calling thread. Strips are compressed into slots of one buffer, each sized for stored blocks,
//! then moved together: no strip's output is held twice. The chunks written are those of the
//! image crate's encoder: IHDR, IDAT, IEND.

use std::io::{self, Write};
use std::ops::Range;

use rayon::prelude::*;

use super::decode::PAR_MIN_PIXELS;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Deflate, 32 KiB window, no dictionary, the "fastest" level hint (fdeflate's header).
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];
/// fdeflate's end-of-block code, 111111110001, as its 12 bits lie in the stream (reversed).
const FDEFLATE_EOB: u32 = 0x8ff;
/// The 3-bit header of a non-final stored block (BFINAL 0, BTYPE 00) is 0.
const STORED: u8 = 0;
/// An empty stored block after its header and padding: LEN 0, NLEN !0.
const EMPTY_STORED: [u8; 4] = [0, 0, 0xff, 0xff];
const MAX_STORED: usize = 0xffff;
/// PNG filter type of every row (Paeth), and of the rows of stored strips (None).
const PAETH: u8 = 4;
/// Filtered bytes handed to fdeflate at once (whole rows, at least one).
const BATCH: usize = 1 << 16;
/// A slot's bytes beside its strip's stored size: chunk length, type and CRC, the zlib header,
/// and room for fdeflate's header and trailer, the sync flush and the stream's Adler-32.
const SLOT_EXTRA: usize = 32;
/// The signature and the IHDR chunk.
const HEAD: usize = 8 + 12 + 13;
const ADLER_BASE: u32 = 65521;

/// Encodes 8-bit pixels (`channels`: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a PNG.
pub(super) fn write(pixels: &[u8], width: u32, height: u32, channels: usize) -> io::Result<Vec<u8>> {
    let color_type = match channels {
        1 => 0,
        2 => 4,
        3 => 2,
        4 => 6,
        _ => return Err(invalid("1 to 4 channels")),
    };
    let (w, h) = (width as usize, height as usize);
    if !(1..=i32::MAX as usize).contains(&w) || !(1..=i32::MAX as usize).contains(&h) {
        return Err(invalid("a size of 1 to 2^31 - 1 pixels a side"));
    }
    if w.checked_mul(h).and_then(|n| n.checked_mul(channels)) != Some(pixels.len()) {
        return Err(invalid("width x height x channels bytes of pixels"));
    }
    let img = Image { pixels, stride: w * channels, bpp: channels };
    let strips = (w * h / PAR_MIN_PIXELS).clamp(1, h);
    let strip_rows = h.div_ceil(strips);
    let ranges: Vec<Range<usize>> = (0..h).step_by(strip_rows).map(|y| y..(y + strip_rows).min(h)).collect();
    let sizes: Vec<usize> = ranges.iter().map(|r| stored_size(img.raw_len(r)) + SLOT_EXTRA).collect();
    if sizes.iter().any(|&s| s > i32::MAX as usize) {
        return Err(invalid("rows of less than 2 GiB"));
    }

    // Zeroed by the allocator: only the pages that the strips write are touched.
    let mut out = vec![0u8; HEAD + sizes.iter().sum::<usize>() + 12];
    out[..8].copy_from_slice(&SIGNATURE);
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    out[24..26].copy_from_slice(&[8, color_type]); // 8 bits; deflate, filters, no interlace: 0
    close_chunk(&mut out[8..], b"IHDR", 13);

    let mut slots = Vec::with_capacity(sizes.len());
    let mut rest = &mut out[HEAD..];
    for &size in &sizes {
        let (slot, tail) = std::mem::take(&mut rest).split_at_mut(size);
        slots.push(slot);
        rest = tail;
    }
    let last = ranges.len() - 1;
    let job = |(i, (slot, rows)): (usize, (&mut [u8], Range<usize>))| img.strip(slot, rows, i == 0, i == last);
    let mut done: Vec<Strip> = if slots.len() == 1 {
        slots.into_iter().zip(ranges).enumerate().map(job).collect::<io::Result<_>>()?
    } else {
        slots.into_par_iter().zip(ranges).enumerate().map(job).collect::<io::Result<_>>()?
    };

    // The last strip's chunk ends with the stream's Adler-32.
    let adler = done[1..].iter().fold(done[0].adler, |a, s| adler32_combine(a, s.adler, s.raw as u64));
    let slot = &mut out[HEAD + sizes[..last].iter().sum::<usize>()..];
    let end = done[last].end;
    slot[end..end + 4].copy_from_slice(&adler.to_be_bytes());
    done[last].end = close_chunk(slot, b"IDAT", end + 4 - 8);

    let (mut at, mut from) = (HEAD, HEAD);
    for (strip, size) in done.iter().zip(&sizes) {
        out.copy_within(from..from + strip.end, at);
        at += strip.end;
        from += size;
    }
    at += close_chunk(&mut out[at..], b"IEND", 0);
    out.truncate(at);
    out.shrink_to_fit();
    Ok(out)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("the PNG writer takes {what}"))
}

/// Bytes of `raw` bytes as stored deflate blocks.
fn stored_size(raw: usize) -> usize {
    raw + 5 * raw.div_ceil(MAX_STORED).max(1)
}

/// Writes a chunk's length, type and CRC around its `len` bytes of data at `buf[8..]`; returns
/// the chunk's size.
fn close_chunk(buf: &mut [u8], kind: &[u8; 4], len: usize) -> usize {
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    buf[4..8].copy_from_slice(kind);
    let crc = crc32fast::hash(&buf[4..8 + len]);
    buf[8 + len..12 + len].copy_from_slice(&crc.to_be_bytes());
    12 + len
}

struct Image<'a> {
    pixels: &'a [u8],
    stride: usize,
    bpp: usize,
}

/// A compressed strip in its slot.
struct Strip {
    /// Size of its IDAT chunk; for the last strip, the end of its data before the Adler-32.
    end: usize,
    /// Adler-32 of its filtered bytes, and their count.
    adler: u32,
    raw: usize,
}

impl Image<'_> {
    fn raw_len(&self, rows: &Range<usize>) -> usize {
        rows.len() * (self.stride + 1)
    }

    fn rows(&self, rows: &Range<usize>) -> std::slice::ChunksExact<'_, u8> {
        self.pixels[rows.start * self.stride..rows.end * self.stride].chunks_exact(self.stride)
    }

    /// Filters and compresses `rows` into `slot` as an IDAT chunk (the last strip's unclosed).
    fn strip(&self, slot: &mut [u8], rows: Range<usize>, first: bool, last: bool) -> io::Result<Strip> {
        let raw = self.raw_len(&rows);
        // The chunk's data starts at 8; a deflate block after the first strip's zlib header.
        let start = if first { 10 } else { 8 };
        let room = slot.len() - 16;
        let mut sink = Sink { buf: &mut slot[start - 2..room], len: 0, full: false };
        let mut z = fdeflate::Compressor::new(&mut sink)?;
        let zero;
        let mut prev = match rows.start {
            0 => {
                zero = vec![0u8; self.stride];
                &zero[..]
            }
            y => &self.pixels[(y - 1) * self.stride..y * self.stride],
        };
        let mut batch = Vec::with_capacity(BATCH.max(self.stride + 1));
        for row in self.rows(&rows) {
            if batch.len() + self.stride + 1 > batch.capacity() {
                z.write_data(&batch)?;
                batch.clear();
            }
            let at = batch.len();
            batch.resize(at + self.stride + 1, PAETH);
            paeth(prev, row, self.bpp, &mut batch[at + 1..]);
            prev = row;
        }
        z.write_data(&batch)?;
        z.finish()?;
        let (written, full) = (sink.len, sink.full);

        // fdeflate's stream: the zlib header, the block, the Adler-32.
        let block = match full {
            true => None,
            false => {
                let end = start + written - 6;
                let adler = u32::from_be_bytes(slot[end..end + 4].try_into().expect("4 bytes"));
                if last { Some(end) } else { sync_flush(slot, start, end) }.map(|end| (end, adler))
            }
        };
        let (end, adler) = match block {
            Some((end, adler)) if end - start <= stored_size(raw) => (end, adler),
            _ => self.stored(slot, start, rows, last),
        };
        if first {
            slot[8..10].copy_from_slice(&ZLIB_HEADER);
        }
        let end = if last { end } else { close_chunk(slot, b"IDAT", end - 8) };
        Ok(Strip { end, adler, raw })
    }

    /// Writes `rows` unfiltered as stored blocks at `slot[start..]`; returns their end and the
    /// rows' Adler-32.
    fn stored(&self, slot: &mut [u8], start: usize, rows: Range<usize>, last: bool) -> (usize, u32) {
        let mut raw = Vec::with_capacity(self.raw_len(&rows));
        for row in self.rows(&rows) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let blocks = raw.len().div_ceil(MAX_STORED);
        let mut at = start;
        for (i, block) in raw.chunks(MAX_STORED).enumerate() {
            let len = block.len() as u16;
            slot[at] = if last && i + 1 == blocks { 1 } else { STORED };
            slot[at + 1..at + 3].copy_from_slice(&len.to_le_bytes());
            slot[at + 3..at + 5].copy_from_slice(&(!len).to_le_bytes());
            slot[at + 5..at + 5 + block.len()].copy_from_slice(block);
            at += 5 + block.len();
        }
        (at, adler32(1, &raw))
    }
}

/// Makes fdeflate's block at `slot[start..end]` a non-final one followed by an empty stored block
/// (a sync flush) and returns the new end; None when the block is not one final dynamic block
/// ending with fdeflate's end-of-block code and zero padding.
fn sync_flush(slot: &mut [u8], start: usize, end: usize) -> Option<usize> {
    if end < start + 3 || slot[start] & 0b111 != 0b101 || slot[end - 1] == 0 {
        return None;
    }
    let tail = slot[end - 1];
    let pad = tail.leading_zeros() as usize;
    let bits = u32::from_le_bytes([slot[end - 3], slot[end - 2], tail, 0]);
    if (bits >> (24 - pad - 12)) & 0xfff != FDEFLATE_EOB {
        return None;
    }
    slot[start] &= !1;
    // The stored block's header takes 3 zero bits: the padding, or the padding and a new byte.
    let mut end = end;
    if pad < 3 {
        slot[end] = STORED;
        end += 1;
    }
    slot[end..end + 4].copy_from_slice(&EMPTY_STORED);
    Some(end + 4)
}

/// fdeflate's output into a slot: bytes past its end are dropped and noted (fdeflate unwraps some
/// of its writes, so this writer never fails).
struct Sink<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.buf.get_mut(self.len..self.len + data.len()) {
            Some(dst) if !self.full => {
                dst.copy_from_slice(data);
                self.len += data.len();
            }
            _ => self.full = true,
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Paeth-filters `row` (`prev` is the row above, zeros for the first) into `out`.
fn paeth(prev: &[u8], row: &[u8], bpp: usize, out: &mut [u8]) {
    let n = row.len();
    // Left of the first pixel is zero: the predictor is the byte above.
    for ((o, &x), &b) in out[..bpp].iter_mut().zip(row).zip(prev) {
        *o = x.wrapping_sub(b);
    }
    let above = prev[bpp..].iter().zip(&prev[..n - bpp]);
    for ((o, (&x, &a)), (&b, &c)) in out[bpp..].iter_mut().zip(row[bpp..].iter().zip(&row[..n - bpp])).zip(above) {
        *o = x.wrapping_sub(paeth_predictor(a, b, c));
    }
}

/// PNG's Paeth predictor in 8-bit arithmetic (FPNGE's form, which vectorizes 16 or 32 bytes at a
/// time): `pa`, `pb`, `pc` are |p - a|, |p - b|, |p - c| for p = a + b - c, with `pc` only exact
/// when it can be the least. (`abs_diff` widens to 32 bits and vectorizes 4 times worse.)
#[inline(always)]
fn paeth_predictor(a: u8, b: u8, c: u8) -> u8 {
    let pa = b.max(c) - b.min(c);
    let pb = a.max(c) - a.min(c);
    let pc = if (a < c) == (c < b) { pa.max(pb) - pa.min(pb) } else { 255 };
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Adler-32 of `data` continuing from `adler` (1 for none).
fn adler32(adler: u32, data: &[u8]) -> u32 {
    let (mut a, mut b) = (adler & 0xffff, adler >> 16);
    // 5552 bytes is the most that cannot overflow `b` between reductions.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= ADLER_BASE;
        b %= ADLER_BASE;
    }
    b << 16 | a
}

/// Adler-32 of the bytes of `adler1` followed by the `len2` bytes of `adler2` (zlib's
/// `adler32_combine`): a = a1 + a2 - 1, b = b1 + b2 + len2 * a1 - len2, modulo 65521.
fn adler32_combine(adler1: u32, adler2: u32, len2: u64) -> u32 {
    let base = u64::from(ADLER_BASE);
    let rem = len2 % base;
    let (a1, b1) = (u64::from(adler1 & 0xffff), u64::from(adler1 >> 16));
    let (a2, b2) = (u64::from(adler2 & 0xffff), u64::from(adler2 >> 16));
    let a = (a1 + a2 + base - 1) % base;
    let b = (rem * a1 + b1 + b2 + base - rem) % base;
    (b << 16 | a) as u32
}

#[cfg(test)]
mod tests;
