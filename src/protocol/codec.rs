//! Packet framing: splits a byte stream into logical packets and back.
//!
//! A wire chunk is a 3-byte little-endian length, a sequence id and the payload.
//! A chunk of exactly [`MAX_CHUNK`] bytes means the logical packet continues in
//! the next chunk; a shorter (possibly empty) chunk ends it. Hence a payload whose
//! length is a multiple of `MAX_CHUNK` (including exactly `MAX_CHUNK`) is written
//! with a trailing empty chunk.
//!
//! Invariants of [`PacketCodec`]:
//! - one sequence counter serves both directions, because MySQL numbers the
//!   packets of one exchange across both directions (reset it to 0 at every command);
//! - every incoming chunk must carry the expected id, else `OutOfOrder`;
//! - the logical size is checked against `max_payload` from the chunk header,
//!   before anything is reserved or copied, else `TooLarge`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::constants::MAX_CHUNK;
use super::ProtocolError;

pub const HEADER_LEN: usize = 4;

/// One logical packet: the reassembled payload of one or more chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first chunk.
    pub seq: u8,
    pub payload: Bytes,
}

/// Where the decoder is between calls.
#[derive(Debug, Default)]
enum DecodeState {
    /// Waiting for the first chunk of a packet.
    #[default]
    Idle,
    /// Full chunks received; waiting for the next chunk of the same packet.
    Continuing { first_seq: u8, acc: BytesMut },
}

/// A `tokio_util` codec for MySQL packets with sequence-id tracking.
#[derive(Debug)]
pub struct PacketCodec {
    max_payload: usize,
    seq: u8,
    state: DecodeState,
}

impl PacketCodec {
    /// A codec accepting logical payloads of at most `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        PacketCodec {
            max_payload,
            seq: 0,
            state: DecodeState::Idle,
        }
    }

    /// Sets the next sequence id expected (decode) or assigned (encode).
    pub fn set_seq(&mut self, seq: u8) {
        self.seq = seq;
    }

    /// The next sequence id expected (decode) or assigned (encode).
    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// Starts a new command exchange: next sequence id is 0.
    pub fn reset_seq(&mut self) {
        self.set_seq(0);
    }
}

/// Reads a chunk header (payload length, sequence id) if 4 bytes are present.
pub fn chunk_header(buf: &[u8]) -> Option<(usize, u8)> {
    match buf.get(..HEADER_LEN)? {
        &[a, b, c, seq] => Some((u32::from_le_bytes([a, b, c, 0]) as usize, seq)),
        _ => None,
    }
}

/// Writes `payload` as one or more chunks starting at `seq`; returns the next id.
pub fn write_packet(dst: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let chunks = payload.len() / MAX_CHUNK + 1;
    dst.reserve(payload.len() + chunks * HEADER_LEN);
    let mut rest = payload;
    loop {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_CHUNK));
        dst.put_uint_le(chunk.len() as u64, 3);
        dst.put_u8(seq);
        dst.put_slice(chunk);
        seq = seq.wrapping_add(1);
        if chunk.len() < MAX_CHUNK {
            return seq;
        }
        rest = tail;
    }
}

impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
        loop {
            let Some((len, seq)) = chunk_header(src) else {
                return Ok(None);
            };
            if seq != self.seq {
                return Err(ProtocolError::OutOfOrder {
                    expected: self.seq,
                    got: seq,
                });
            }
            // 1. Bound check on the announced total, before any reserve or copy.
            let so_far = match &self.state {
                DecodeState::Idle => 0,
                DecodeState::Continuing { acc, .. } => acc.len(),
            };
            let total = so_far.saturating_add(len);
            if total > self.max_payload {
                return Err(ProtocolError::TooLarge {
                    size: total,
                    max: self.max_payload,
                });
            }
            // 2. Wait for the whole chunk, reserving only what the header announced.
            let needed = HEADER_LEN + len;
            if src.len() < needed {
                src.reserve(needed - src.len());
                return Ok(None);
            }
            // 3. Consume the chunk.
            src.advance(HEADER_LEN);
            let chunk = src.split_to(len);
            self.seq = seq.wrapping_add(1);
            let (first_seq, mut acc) = match std::mem::take(&mut self.state) {
                DecodeState::Idle => (seq, chunk),
                DecodeState::Continuing { first_seq, mut acc } => {
                    acc.extend_from_slice(&chunk);
                    (first_seq, acc)
                }
            };
            if len < MAX_CHUNK {
                return Ok(Some(Packet {
                    seq: first_seq,
                    payload: acc.split().freeze(),
                }));
            }
            self.state = DecodeState::Continuing { first_seq, acc };
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
        match self.decode(src)? {
            Some(packet) => Ok(Some(packet)),
            None if src.is_empty() && matches!(self.state, DecodeState::Idle) => Ok(None),
            None => Err(ProtocolError::Truncated {
                what: "packet at end of stream",
            }),
        }
    }
}

impl Encoder<&[u8]> for PacketCodec {
    type Error = ProtocolError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.seq = write_packet(dst, self.seq, payload);
        Ok(())
    }
}

impl Encoder<Bytes> for PacketCodec {
    type Error = ProtocolError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.seq = write_packet(dst, self.seq, &payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `wire` to a fresh decoder in pieces cut at `cuts`, collecting packets.
    fn decode_in_pieces(
        wire: &[u8],
        cuts: &[usize],
        max: usize,
    ) -> Result<Vec<Packet>, ProtocolError> {
        let mut codec = PacketCodec::new(max);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut src = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts {
            src.extend_from_slice(&wire[start..cut]);
            start = cut;
            while let Some(p) = codec.decode(&mut src)? {
                out.push(p);
            }
        }
        if let Some(p) = codec.decode_eof(&mut src)? {
            out.push(p);
        }
        Ok(out)
    }

    fn encode(seq: u8, payload: &[u8]) -> BytesMut {
        let mut wire = BytesMut::new();
        write_packet(&mut wire, seq, payload);
        wire
    }

    #[test]
    fn header_parsing() {
        assert_eq!(chunk_header(&[1, 0, 0]), None);
        assert_eq!(chunk_header(&[1, 2, 3, 9, 0xAA]), Some((0x030201, 9)));
    }

    #[test]
    fn small_packet_layout() {
        let wire = encode(0, &[0x0E]);
        assert_eq!(&wire[..], &[1, 0, 0, 0, 0x0E]);
        assert_eq!(&encode(7, &[])[..], &[0, 0, 0, 7]);
    }

    #[test]
    fn exact_max_chunk_gets_empty_trailer() {
        let payload = vec![0x5A; MAX_CHUNK];
        let mut wire = BytesMut::new();
        assert_eq!(write_packet(&mut wire, 255, &payload), 1);
        assert_eq!(wire.len(), MAX_CHUNK + 2 * HEADER_LEN);
        assert_eq!(&wire[..4], &[0xFF, 0xFF, 0xFF, 255]);
        assert_eq!(&wire[wire.len() - 4..], &[0, 0, 0, 0]);
        // A fresh codec expects 0, not 255.
        assert!(matches!(
            decode_in_pieces(&wire, &[], usize::MAX),
            Err(ProtocolError::OutOfOrder {
                expected: 0,
                got: 255
            })
        ));
        let mut codec = PacketCodec::new(usize::MAX);
        codec.set_seq(255);
        let p = codec.decode(&mut wire).unwrap().unwrap();
        assert_eq!(p.seq, 255);
        assert_eq!(p.payload.len(), MAX_CHUNK);
        assert_eq!(codec.seq(), 1);
        assert!(wire.is_empty());
    }

    #[test]
    fn wrong_sequence_is_out_of_order() {
        let wire = encode(3, b"hello");
        let err = decode_in_pieces(&wire, &[], 1024).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::OutOfOrder {
                expected: 0,
                got: 3
            }
        ));
        // Second chunk of a multi-chunk packet with a wrong id.
        let mut wire = encode(0, &vec![0u8; MAX_CHUNK + 1]);
        let second = MAX_CHUNK + HEADER_LEN + 3;
        wire[second] = 9;
        let err = decode_in_pieces(&wire, &[], usize::MAX).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::OutOfOrder {
                expected: 1,
                got: 9
            }
        ));
    }

    #[test]
    fn oversized_announcement_rejected_before_allocating() {
        let mut codec = PacketCodec::new(1024);
        let mut src = BytesMut::with_capacity(8);
        src.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0]);
        let cap = src.capacity();
        let err = codec.decode(&mut src).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::TooLarge {
                size: MAX_CHUNK,
                max: 1024
            }
        ));
        assert_eq!(src.capacity(), cap);
    }

    #[test]
    fn oversized_total_across_chunks_rejected() {
        let wire = encode(0, &vec![1u8; MAX_CHUNK + 11]);
        let err = decode_in_pieces(&wire, &[], MAX_CHUNK + 10).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { size, .. } if size == MAX_CHUNK + 11));
        // At the limit it passes.
        let packets = decode_in_pieces(&wire, &[], MAX_CHUNK + 11).unwrap();
        assert_eq!(packets.len(), 1);
    }

    #[test]
    fn truncated_stream_at_eof_is_an_error() {
        let wire = encode(0, b"hello");
        let mut codec = PacketCodec::new(1024);
        let mut src = BytesMut::from(&wire[..6]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(matches!(
            codec.decode_eof(&mut src),
            Err(ProtocolError::Truncated { .. })
        ));
        let mut empty = BytesMut::new();
        assert!(PacketCodec::new(8)
            .decode_eof(&mut empty)
            .unwrap()
            .is_none());
    }

    #[test]
    fn encoder_advances_shared_sequence() {
        let mut codec = PacketCodec::new(1024);
        let mut dst = BytesMut::new();
        codec.encode(&b"a"[..], &mut dst).unwrap();
        codec.encode(Bytes::from_static(b"bc"), &mut dst).unwrap();
        assert_eq!(codec.seq(), 2);
        assert_eq!(&dst[..], &[1, 0, 0, 0, b'a', 2, 0, 0, 1, b'b', b'c']);
        codec.reset_seq();
        assert_eq!(codec.seq(), 0);
        let a = codec.decode(&mut dst).unwrap().unwrap();
        let b = codec.decode(&mut dst).unwrap().unwrap();
        assert_eq!((a.seq, &a.payload[..]), (0, &b"a"[..]));
        assert_eq!((b.seq, &b.payload[..]), (1, &b"bc"[..]));
        assert!(codec.decode(&mut dst).unwrap().is_none());
    }

    #[test]
    fn boundary_sizes_round_trip() {
        for len in [0, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let wire = encode(0, &payload);
            let chunks = len / MAX_CHUNK + 1;
            assert_eq!(wire.len(), len + 4 * chunks);
            let cuts = [
                1,
                3,
                MAX_CHUNK + 2,
                MAX_CHUNK + 4,
                MAX_CHUNK + 5,
                2 * MAX_CHUNK + 7,
            ];
            let got = decode_in_pieces(&wire, &cuts, usize::MAX).unwrap();
            assert_eq!(got.len(), 1, "len {len}");
            assert!(got[0].payload[..] == payload[..], "len {len}");
        }
    }

    /// Mostly small payloads, sometimes one at a chunk boundary (content is a
    /// cheap pattern so big cases stay fast).
    fn payload_strategy() -> impl Strategy<Value = Vec<u8>> {
        let small = proptest::collection::vec(any::<u8>(), 0..600);
        let big_len = prop_oneof![
            Just(MAX_CHUNK - 1),
            Just(MAX_CHUNK),
            Just(MAX_CHUNK + 1),
            Just(2 * MAX_CHUNK),
        ];
        let big = (big_len, any::<u8>())
            .prop_map(|(len, seed)| (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect());
        prop_oneof![40 => small, 1 => big]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn round_trip_in_arbitrary_pieces(
            payloads in proptest::collection::vec(payload_strategy(), 1..4),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut wire = BytesMut::new();
            let mut seq = 0u8;
            let mut seqs = Vec::new();
            for p in &payloads {
                seqs.push(seq);
                seq = write_packet(&mut wire, seq, p);
            }
            let got = decode_in_pieces(&wire, &cuts, usize::MAX).unwrap();
            prop_assert_eq!(got.len(), payloads.len());
            for ((g, p), s) in got.iter().zip(&payloads).zip(&seqs) {
                prop_assert_eq!(g.seq, *s);
                prop_assert!(g.payload[..] == p[..]);
            }
            if wire.len() < 4096 {
                let every: Vec<usize> = (0..wire.len()).collect();
                let got = decode_in_pieces(&wire, &every, usize::MAX).unwrap();
                prop_assert_eq!(got.len(), payloads.len());
                for (g, p) in got.iter().zip(&payloads) {
                    prop_assert!(g.payload[..] == p[..]);
                }
            }
        }

        #[test]
        fn wrong_start_seq_is_rejected(payload in proptest::collection::vec(any::<u8>(), 0..64), seq in 1u8..) {
            let wire = encode(seq, &payload);
            let err = decode_in_pieces(&wire, &[], 1024).unwrap_err();
            let is_out_of_order = matches!(err, ProtocolError::OutOfOrder { expected: 0, got } if got == seq);
            prop_assert!(is_out_of_order);
        }

        #[test]
        fn announced_length_over_max_is_too_large(len in 65usize..=MAX_CHUNK, max in 0usize..=64) {
            let mut src = BytesMut::with_capacity(4);
            src.put_uint_le(len as u64, 3);
            src.put_u8(0);
            let err = PacketCodec::new(max).decode(&mut src).unwrap_err();
            let too_large = matches!(err, ProtocolError::TooLarge { size, max: m } if size == len && m == max);
            prop_assert!(too_large);
            prop_assert!(src.capacity() < 64);
        }
    }
}
