//! Packet codec: an arbitrary byte stream fed to the decoder in arbitrary pieces
//! must give packets within the size limit or an error, never a panic; and any
//! payloads (including multiples of 0xFFFFFF) encoded then decoded in arbitrary
//! pieces must come back unchanged with their sequence ids.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::codec::{Packet, PacketCodec};
use switchyard::protocol::constants::MAX_CHUNK;
use switchyard::protocol::ProtocolError;
use tokio_util::codec::{Decoder, Encoder};

/// Logical payload bytes one input may ask for; keeps a run fast and its memory bounded.
const PAYLOAD_BUDGET: usize = 2 * MAX_CHUNK + 64 * 1024;

#[derive(Arbitrary, Debug)]
enum Payload {
    Small(Vec<u8>),
    /// One or two whole chunks, one byte short, exact or one over: the sizes where the
    /// continuation rule and the empty trailing chunk matter.
    Boundary {
        chunks: u8,
        delta: u8,
        fill: u8,
    },
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Payload::Small(ref p) => p.clone(),
            Payload::Boundary {
                chunks,
                delta,
                fill,
            } => {
                let len = (usize::from(chunks % 2) + 1) * MAX_CHUNK + usize::from(delta % 3);
                vec![fill; len - 1]
            }
        }
    }
}

/// `wire` comes last so it takes the rest of the input as it is: a captured stream
/// makes a seed after a short header.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    start_seq: u8,
    max_payload: u32,
    cuts: Vec<u32>,
    payloads: Vec<Payload>,
    wire: &'a [u8],
}

/// Feeds `wire` to `codec` in pieces ending at `cuts`, collecting packets until the
/// first error.
fn decode_in_pieces(
    codec: &mut PacketCodec,
    wire: &[u8],
    cuts: &[u32],
) -> (Vec<Packet>, Result<BytesMut, ProtocolError>) {
    let mut ends: Vec<usize> = cuts
        .iter()
        .map(|&c| c as usize % (wire.len() + 1))
        .collect();
    ends.push(wire.len());
    ends.sort_unstable();
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in ends {
        src.extend_from_slice(&wire[start..end]);
        start = end;
        loop {
            match codec.decode(&mut src) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    match codec.decode_eof(&mut src) {
        Ok(Some(p)) => out.push(p),
        Ok(None) => {}
        Err(e) => return (out, Err(e)),
    }
    (out, Ok(src))
}

/// Arbitrary bytes: packets within the limit, or an error.
fn arbitrary_stream(input: &Input<'_>) {
    let max = input.max_payload as usize;
    let mut codec = PacketCodec::new(max);
    codec.set_seq(input.start_seq);
    let (packets, _) = decode_in_pieces(&mut codec, input.wire, &input.cuts);
    for p in &packets {
        assert!(p.payload.len() <= max, "payload over the limit");
    }
}

/// Encode, then decode in pieces: the same payloads with consecutive sequence ids.
fn round_trip(input: &Input<'_>) {
    let mut budget = PAYLOAD_BUDGET;
    let mut payloads = Vec::new();
    for p in &input.payloads {
        let bytes = p.bytes();
        let Some(left) = budget.checked_sub(bytes.len()) else {
            break;
        };
        budget = left;
        payloads.push(bytes);
    }
    let mut encoder = PacketCodec::new(0);
    encoder.set_seq(input.start_seq);
    let mut wire = BytesMut::new();
    let mut seqs = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        seqs.push(encoder.seq());
        // Both encoder impls, alternately.
        let done = if i % 2 == 0 {
            encoder.encode(&p[..], &mut wire)
        } else {
            encoder.encode(Bytes::copy_from_slice(p), &mut wire)
        };
        assert!(done.is_ok());
    }
    let mut decoder = PacketCodec::new(usize::MAX);
    decoder.set_seq(input.start_seq);
    let (packets, rest) = decode_in_pieces(&mut decoder, &wire, &input.cuts);
    let rest = rest.expect("a well-formed stream decodes");
    assert!(rest.is_empty(), "bytes left over");
    assert_eq!(packets.len(), payloads.len());
    for ((got, want), seq) in packets.iter().zip(&payloads).zip(&seqs) {
        assert_eq!(got.seq, *seq);
        assert!(got.payload[..] == want[..], "payload changed");
    }
    assert_eq!(decoder.seq(), encoder.seq());
}

fuzz_target!(|input: Input| {
    arbitrary_stream(&input);
    round_trip(&input);
});
