//! Packet codec: an arbitrary byte stream fed to the decoder in arbitrary pieces must
//! give packets within the size limit or an error, never a panic; and small payloads
//! encoded then decoded in arbitrary pieces come back unchanged with their sequence
//! ids. (Payloads at the 0xFFFFFF chunk boundary have their own target,
//! `codec_boundary`, as each costs tens of megabytes of copying.)
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::codec::PacketCodec;
use switchyard_fuzz::{decode_in_pieces, round_trip};

/// `wire` comes last so it takes the rest of the input as it is: a captured stream
/// makes a seed after a short header.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    start_seq: u8,
    max_payload: u32,
    cuts: Vec<u32>,
    payloads: Vec<Vec<u8>>,
    wire: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let max = input.max_payload as usize;
    let mut codec = PacketCodec::new(max);
    codec.set_seq(input.start_seq);
    let (packets, _) = decode_in_pieces(&mut codec, input.wire, &input.cuts);
    for p in &packets {
        assert!(p.payload.len() <= max, "payload over the limit");
    }
    round_trip(input.start_seq, &input.payloads, &input.cuts);
});
