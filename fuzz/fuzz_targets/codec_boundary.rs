//! Packet codec at the chunk boundary: a payload one byte short of, exactly, or one
//! byte over one or two 0xFFFFFF chunks (exact multiples go out with an empty trailing
//! chunk), between small payloads, encoded then decoded in arbitrary pieces, comes
//! back unchanged with its sequence ids.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::constants::MAX_CHUNK;
use switchyard_fuzz::round_trip;

#[derive(Arbitrary, Debug)]
enum Size {
    ShortOfOne,
    One,
    OverOne,
    ShortOfTwo,
    Two,
    OverTwo,
}

impl Size {
    fn len(&self) -> usize {
        match self {
            Size::ShortOfOne => MAX_CHUNK - 1,
            Size::One => MAX_CHUNK,
            Size::OverOne => MAX_CHUNK + 1,
            Size::ShortOfTwo => 2 * MAX_CHUNK - 1,
            Size::Two => 2 * MAX_CHUNK,
            Size::OverTwo => 2 * MAX_CHUNK + 1,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    start_seq: u8,
    size: Size,
    fill: u8,
    before: Vec<u8>,
    after: Vec<u8>,
    cuts: Vec<u32>,
}

fuzz_target!(|input: Input| {
    let payloads = [
        input.before,
        vec![input.fill; input.size.len()],
        input.after,
    ];
    round_trip(input.start_seq, &payloads, &input.cuts);
});
