//! What more than one fuzz target needs: feeding the packet decoder in pieces, and the
//! encode → decode round trip.

use bytes::{Bytes, BytesMut};
use switchyard::protocol::codec::{Packet, PacketCodec};
use switchyard::protocol::ProtocolError;
use tokio_util::codec::{Decoder, Encoder};

/// Feeds `wire` to `codec` in pieces ending at `cuts` (taken modulo the length),
/// collecting packets until the first error; on success, what is left in the buffer.
pub fn decode_in_pieces(
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

/// Encodes `payloads` from `start_seq` (both encoder impls, alternately), decodes the
/// stream in pieces ending at `cuts`, and checks that the same payloads come back with
/// consecutive sequence ids and nothing left over.
pub fn round_trip(start_seq: u8, payloads: &[Vec<u8>], cuts: &[u32]) {
    let mut encoder = PacketCodec::new(0);
    encoder.set_seq(start_seq);
    let mut wire = BytesMut::new();
    let mut seqs = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        seqs.push(encoder.seq());
        let done = if i % 2 == 0 {
            encoder.encode(&p[..], &mut wire)
        } else {
            encoder.encode(Bytes::copy_from_slice(p), &mut wire)
        };
        assert!(done.is_ok());
    }
    let mut decoder = PacketCodec::new(usize::MAX);
    decoder.set_seq(start_seq);
    let (packets, rest) = decode_in_pieces(&mut decoder, &wire, cuts);
    let rest = rest.expect("a well-formed stream decodes");
    assert!(rest.is_empty(), "bytes left over");
    assert_eq!(packets.len(), payloads.len());
    for ((got, want), seq) in packets.iter().zip(payloads).zip(&seqs) {
        assert_eq!(got.seq, *seq);
        assert!(got.payload[..] == want[..], "payload changed");
    }
    assert_eq!(decoder.seq(), encoder.seq());
}
