//! The compressed protocol's framing (`CLIENT_COMPRESS`, zlib, and MySQL's
//! `CLIENT_ZSTD_COMPRESSION_ALGORITHM`, zstd), without I/O.
//!
//! Every transport packet is a 7-byte header — compressed length (u24), compressed
//! sequence id (u8), uncompressed length (u24) — and a body: zlib or zstd data that
//! inflates to exactly the uncompressed length, or, when that length is 0, the bytes
//! themselves (servers send short or incompressible payloads that way). The inflated
//! bytes of consecutive packets form a plain stream of ordinary MySQL packets: one
//! compressed packet may hold several of them or part of one.
//!
//! Invariant: no length read from the peer reserves more than [`MAX_LEN`] bytes, and a
//! body must inflate to exactly its declared length.

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::protocol::ProtocolError;

/// Length of the compressed packet header.
pub const HEADER_LEN: usize = 7;
/// Largest body, and largest uncompressed content, of one compressed packet.
pub const MAX_LEN: usize = 0xFF_FFFF;
/// Content shorter than this is sent as it is, as servers do (`MIN_COMPRESS_LENGTH`).
pub const MIN_COMPRESS_LEN: usize = 50;
/// zstd level when the client names none (MySQL's default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The algorithm negotiated for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Zlib,
    /// With the level the client asked for in its handshake response.
    Zstd {
        level: i32,
    },
}

/// A compressed packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Length of the body that follows the header.
    pub body_len: usize,
    pub seq: u8,
    /// Length of the content once inflated; 0 when the body is not compressed.
    pub uncompressed_len: usize,
}

impl Header {
    /// The header at the start of `buf`, if all of it is there.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        match buf.get(..HEADER_LEN)? {
            &[a, b, c, seq, d, e, f] => Some(Header {
                body_len: u24(a, b, c),
                seq,
                uncompressed_len: u24(d, e, f),
            }),
            _ => None,
        }
    }

    fn put(&self, dst: &mut [u8]) {
        if let Some(h) = dst.get_mut(..HEADER_LEN) {
            h[..3].copy_from_slice(&(self.body_len as u32).to_le_bytes()[..3]);
            h[3] = self.seq;
            h[4..].copy_from_slice(&(self.uncompressed_len as u32).to_le_bytes()[..3]);
        }
    }
}

fn u24(a: u8, b: u8, c: u8) -> usize {
    u32::from_le_bytes([a, b, c, 0]) as usize
}

/// Whether `buf` starts with a whole compressed packet.
pub fn has_packet(buf: &[u8]) -> bool {
    Header::parse(buf).is_some_and(|h| buf.len() >= HEADER_LEN + h.body_len)
}

/// Compresses and inflates compressed packets for one connection. The (de)compressor
/// states are made on first use and kept, since making them costs more than using
/// them; [`Codec::release`] gives them back while the connection is idle.
pub struct Codec {
    algorithm: Algorithm,
    deflate: Option<Compress>,
    inflate: Option<Decompress>,
    zstd_out: Option<zstd::bulk::Compressor<'static>>,
    zstd_in: Option<zstd::bulk::Decompressor<'static>>,
}

impl Codec {
    pub fn new(algorithm: Algorithm) -> Self {
        Codec {
            algorithm,
            deflate: None,
            inflate: None,
            zstd_out: None,
            zstd_in: None,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Drops the (de)compressor states; they are made again when next needed.
    pub fn release(&mut self) {
        self.deflate = None;
        self.inflate = None;
        self.zstd_out = None;
        self.zstd_in = None;
    }

    /// Appends to `dst` one compressed packet with sequence id `seq` holding `data`
    /// (at most [`MAX_LEN`] bytes; the caller splits). Content that is short or does
    /// not shrink is sent uncompressed.
    pub fn encode(&mut self, seq: u8, data: &[u8], dst: &mut BytesMut) -> std::io::Result<()> {
        if data.len() > MAX_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "more than one compressed packet holds",
            ));
        }
        let start = dst.len();
        let body = start + HEADER_LEN;
        dst.resize(body, 0);
        let compressed = if data.len() < MIN_COMPRESS_LEN {
            None
        } else {
            // Room for no more than the content itself: what does not fit did not
            // shrink, and goes as it is.
            dst.resize(body + data.len(), 0);
            let out = &mut dst[body..];
            match self.algorithm {
                Algorithm::Zlib => deflate_into(self.deflater(), data, out),
                Algorithm::Zstd { level } => {
                    let z = zstd_compressor(&mut self.zstd_out, level)?;
                    z.compress_to_buffer(data, out).ok()
                }
            }
        };
        let header = match compressed {
            Some(n) => {
                dst.truncate(body + n);
                Header {
                    body_len: n,
                    seq,
                    uncompressed_len: data.len(),
                }
            }
            None => {
                dst.truncate(body);
                dst.put_slice(data);
                Header {
                    body_len: data.len(),
                    seq,
                    uncompressed_len: 0,
                }
            }
        };
        header.put(&mut dst[start..]);
        Ok(())
    }

    /// Takes one whole compressed packet off the front of `src` and appends its
    /// content to `dst`; returns its sequence id, or `None` (nothing taken) while the
    /// packet is incomplete.
    pub fn decode(
        &mut self,
        src: &mut BytesMut,
        dst: &mut BytesMut,
    ) -> Result<Option<u8>, ProtocolError> {
        let Some(header) = Header::parse(src) else {
            return Ok(None);
        };
        let Some(body) = src.get(HEADER_LEN..HEADER_LEN + header.body_len) else {
            return Ok(None);
        };
        if header.uncompressed_len == 0 {
            dst.extend_from_slice(body);
        } else {
            // One byte more than declared, so content that runs longer shows.
            let start = dst.len();
            dst.resize(start + header.uncompressed_len + 1, 0);
            let out = &mut dst[start..];
            let inflated = match self.algorithm {
                Algorithm::Zlib => inflate_into(self.inflater(), body, out),
                Algorithm::Zstd { .. } => {
                    let z = match &mut self.zstd_in {
                        Some(z) => z,
                        None => self.zstd_in.insert(zstd::bulk::Decompressor::new()?),
                    };
                    z.decompress_to_buffer(body, out).ok()
                }
            };
            if inflated != Some(header.uncompressed_len) {
                dst.truncate(start);
                return Err(ProtocolError::Malformed {
                    what: "compressed packet does not inflate to its declared length",
                });
            }
            dst.truncate(start + header.uncompressed_len);
        }
        src.advance(HEADER_LEN + header.body_len);
        Ok(Some(header.seq))
    }

    fn deflater(&mut self) -> &mut Compress {
        self.deflate
            .get_or_insert_with(|| Compress::new(Compression::default(), true))
    }

    fn inflater(&mut self) -> &mut Decompress {
        self.inflate.get_or_insert_with(|| Decompress::new(true))
    }
}

fn zstd_compressor<'a>(
    slot: &'a mut Option<zstd::bulk::Compressor<'static>>,
    level: i32,
) -> std::io::Result<&'a mut zstd::bulk::Compressor<'static>> {
    match slot {
        Some(z) => Ok(z),
        None => Ok(slot.insert(zstd::bulk::Compressor::new(level)?)),
    }
}

/// One whole zlib stream of `data` into `out`; `None` when it does not fit.
fn deflate_into(z: &mut Compress, data: &[u8], out: &mut [u8]) -> Option<usize> {
    z.reset();
    match z.compress(data, out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => usize::try_from(z.total_out()).ok(),
        _ => None,
    }
}

/// Inflates the zlib stream `body` into `out`; how many bytes it gave, or `None` when
/// it is not zlib or bytes follow its end.
///
/// A stream whose Adler-32 trailer is cut short counts, going by the length it
/// inflates to (checked by the caller): servers take such packets, and a client
/// library in use (mysql_common, behind mysql_async) sends them when its deflate
/// output outgrows the room it made for it.
fn inflate_into(z: &mut Decompress, body: &[u8], out: &mut [u8]) -> Option<usize> {
    z.reset(true);
    let status = z.decompress(body, out, FlushDecompress::Finish);
    let all_read = z.total_in() == body.len() as u64;
    let whole = matches!(status, Ok(Status::StreamEnd));
    let cut_short = !whole && all_read && z.total_out() < out.len() as u64;
    if (whole && all_read) || cut_short {
        usize::try_from(z.total_out()).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ZSTD: Algorithm = Algorithm::Zstd { level: 3 };

    fn encoded(algorithm: Algorithm, seq: u8, data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        Codec::new(algorithm).encode(seq, data, &mut out).unwrap();
        out
    }

    fn decoded(algorithm: Algorithm, mut wire: BytesMut) -> Vec<(u8, Vec<u8>)> {
        let mut codec = Codec::new(algorithm);
        let mut got = Vec::new();
        loop {
            let mut content = BytesMut::new();
            match codec.decode(&mut wire, &mut content).unwrap() {
                Some(seq) => got.push((seq, content.to_vec())),
                None => break,
            }
        }
        assert!(wire.is_empty(), "{} bytes left over", wire.len());
        got
    }

    #[test]
    fn short_content_goes_uncompressed() {
        // A COM_QUERY "SELECT 1" packet, as a client sends it.
        let query = b"\x09\x00\x00\x00\x03SELECT 1";
        for algorithm in [Algorithm::Zlib, ZSTD] {
            let wire = encoded(algorithm, 0, query);
            assert_eq!(&wire[..HEADER_LEN], &[13, 0, 0, 0, 0, 0, 0]);
            assert_eq!(&wire[HEADER_LEN..], query);
        }
    }

    #[test]
    fn long_content_is_compressed_with_its_length() {
        let data = vec![b'x'; 1000];
        for algorithm in [Algorithm::Zlib, ZSTD] {
            let wire = encoded(algorithm, 9, &data);
            let h = Header::parse(&wire).unwrap();
            assert_eq!((h.seq, h.uncompressed_len), (9, 1000));
            assert!(h.body_len < 100, "{h:?}");
            assert_eq!(wire.len(), HEADER_LEN + h.body_len);
            assert_eq!(decoded(algorithm, wire), [(9, data.clone())]);
        }
    }

    #[test]
    fn zlib_body_is_a_zlib_stream() {
        // What servers and clients inflate with zlib's uncompress().
        let data = b"a row of text that repeats, a row of text that repeats".repeat(4);
        let wire = encoded(Algorithm::Zlib, 0, &data);
        let mut inflated = Vec::new();
        use std::io::Read;
        flate2::read::ZlibDecoder::new(&wire[HEADER_LEN..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, data);
    }

    /// A packet as other encoders make it: any zlib level, the stream whole.
    fn foreign_zlib(level: u32, seq: u8, data: &[u8]) -> BytesMut {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(level));
        z.write_all(data).unwrap();
        let body = z.finish().unwrap();
        let mut wire = BytesMut::new();
        wire.put_uint_le(body.len() as u64, 3);
        wire.put_u8(seq);
        wire.put_uint_le(data.len() as u64, 3);
        wire.put_slice(&body);
        wire
    }

    #[test]
    fn inflates_every_zlib_level() {
        let insert = b"\x3c\x00\x00\x00\x03INSERT INTO test.load (id, w) VALUES (1000193, 1)";
        let text = b"a row of text that repeats, a row of text that repeats".repeat(40);
        for level in 0..=9 {
            for data in [&insert[..], &text[..]] {
                let wire = foreign_zlib(level, 4, data);
                assert_eq!(
                    decoded(Algorithm::Zlib, wire),
                    [(4, data.to_vec())],
                    "level {level}"
                );
            }
        }
    }

    #[test]
    fn a_cut_short_adler32_is_taken_as_servers_do() {
        // What mysql_async sent for an INSERT: a stored block, Adler-32 missing 2 bytes.
        let data = b"\x2e\x00\x00\x00\x03INSERT INTO test.load (id, w) VALUES (218, 0)";
        let mut wire = foreign_zlib(0, 0, data);
        wire.truncate(wire.len() - 2);
        wire[0] -= 2;
        assert_eq!(decoded(Algorithm::Zlib, wire), [(0, data.to_vec())]);
        // Cut into the deflate data itself: too short, refused.
        let mut wire = foreign_zlib(0, 0, data);
        wire.truncate(wire.len() - 6);
        wire[0] -= 6;
        let mut out = BytesMut::new();
        assert!(Codec::new(Algorithm::Zlib)
            .decode(&mut wire, &mut out)
            .is_err());
    }

    #[test]
    fn incompressible_content_goes_as_it_is() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let wire = encoded(Algorithm::Zlib, 1, &data);
        let h = Header::parse(&wire).unwrap();
        assert_eq!((h.body_len, h.uncompressed_len), (4096, 0));
    }

    #[test]
    fn waits_for_a_whole_packet() {
        let wire = encoded(Algorithm::Zlib, 3, &[7; 500]);
        let mut codec = Codec::new(Algorithm::Zlib);
        for cut in [0, 3, HEADER_LEN, wire.len() - 1] {
            let mut part = BytesMut::from(&wire[..cut]);
            let mut out = BytesMut::new();
            assert!(!has_packet(&part));
            assert_eq!(codec.decode(&mut part, &mut out).unwrap(), None);
            assert_eq!((part.len(), out.len()), (cut, 0));
        }
        assert!(has_packet(&wire));
    }

    #[test]
    fn wrong_lengths_and_garbage_are_errors() {
        let mut wire = encoded(Algorithm::Zlib, 0, &[7; 500]);
        // Declares one byte more than the body inflates to.
        wire[4] = wire[4].wrapping_add(1);
        let mut out = BytesMut::new();
        assert!(Codec::new(Algorithm::Zlib)
            .decode(&mut wire, &mut out)
            .is_err());
        assert!(out.is_empty());
        let mut garbage = BytesMut::from(&[5u8, 0, 0, 0, 100, 0, 0, 1, 2, 3, 4, 5][..]);
        for algorithm in [Algorithm::Zlib, ZSTD] {
            let mut g = garbage.clone();
            assert!(Codec::new(algorithm).decode(&mut g, &mut out).is_err());
        }
        // A declared length shorter than the content.
        let mut short = encoded(ZSTD, 0, &[7; 500]);
        short[4] = 10;
        short[5] = 0;
        assert!(Codec::new(ZSTD).decode(&mut short, &mut out).is_err());
        garbage.clear();
    }

    #[test]
    fn release_keeps_working() {
        let mut codec = Codec::new(Algorithm::Zlib);
        let mut wire = BytesMut::new();
        codec.encode(0, &[1; 300], &mut wire).unwrap();
        codec.release();
        codec.encode(1, &[2; 300], &mut wire).unwrap();
        assert_eq!(
            decoded(Algorithm::Zlib, wire),
            [(0, vec![1; 300]), (1, vec![2; 300])]
        );
    }

    #[test]
    fn refuses_content_over_one_packet() {
        let mut out = BytesMut::new();
        let big = vec![0; MAX_LEN + 1];
        assert!(Codec::new(Algorithm::Zlib)
            .encode(0, &big, &mut out)
            .is_err());
    }

    fn algorithm() -> impl Strategy<Value = Algorithm> {
        prop_oneof![
            Just(Algorithm::Zlib),
            (1i32..=19).prop_map(|level| Algorithm::Zstd { level })
        ]
    }

    fn content() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            // Compressible: few distinct bytes.
            proptest::collection::vec(0u8..4, 0..5000),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(
            algorithm in algorithm(),
            parts in proptest::collection::vec((any::<u8>(), content()), 1..5),
        ) {
            let mut codec = Codec::new(algorithm);
            let mut wire = BytesMut::new();
            for (seq, data) in &parts {
                codec.encode(*seq, data, &mut wire).unwrap();
            }
            prop_assert_eq!(decoded(algorithm, wire), parts);
        }

        #[test]
        fn never_panics(
            algorithm in algorithm(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut src = BytesMut::from(&data[..]);
            let mut out = BytesMut::new();
            let mut codec = Codec::new(algorithm);
            while let Ok(Some(_)) = codec.decode(&mut src, &mut out) {}
        }
    }
}
