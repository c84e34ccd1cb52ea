//! The response state machine, walked the way the relay walks a server's answer: for
//! each packet, `needs_whole` on its first byte and first-chunk length, then
//! `on_streamed` or `on_packet`. Whatever the packets, for every `Expect` kind and
//! capability set it never panics, takes one step per packet, refuses packets after
//! the end, and the events it reports hold what the relay then relies on.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::codec::chunk_header;
use switchyard::protocol::constants::{
    CLIENT_SESSION_TRACK, MAX_CHUNK, SERVER_SESSION_STATE_CHANGED,
};
use switchyard::protocol::packets::OkPacket;
use switchyard::proxy::relay::strip_session_track;
use switchyard::proxy::response::{Event, Expect, Response};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    ResultSets,
    Prepare,
    FieldList,
    Fetch,
    Single,
    Raw,
}

impl From<Kind> for Expect {
    fn from(k: Kind) -> Expect {
        match k {
            Kind::ResultSets => Expect::ResultSets,
            Kind::Prepare => Expect::Prepare,
            Kind::FieldList => Expect::FieldList,
            Kind::Fetch => Expect::Fetch,
            Kind::Single => Expect::Single,
            Kind::Raw => Expect::Raw,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Wire {
    payload: Vec<u8>,
    /// Announce a full first chunk (a packet continued in further chunks).
    spans_chunks: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    expect: Kind,
    caps: u32,
    mariadb_caps: u32,
    packets: Vec<Wire>,
}

/// The OK rewrite for clients without session tracking: one well-framed packet whose
/// status lost SESSION_STATE_CHANGED (or the packet unchanged when unreadable).
fn check_strip(payload: &[u8], seq: u8) {
    let mut out = BytesMut::new();
    strip_session_track(payload, seq, &mut out);
    let (len, got_seq) = chunk_header(&out).expect("a packet header");
    assert_eq!(got_seq, seq);
    assert_eq!(
        len + 4,
        out.len(),
        "length header disagrees with the payload"
    );
    assert!(len <= payload.len(), "rewrite grew the packet");
    if let Ok(tracked) = OkPacket::parse(payload, CLIENT_SESSION_TRACK) {
        let plain = OkPacket::parse(out.get(4..).unwrap_or_default(), 0).expect("an OK");
        assert_eq!(plain.status, tracked.status & !SERVER_SESSION_STATE_CHANGED);
        assert_eq!(
            (plain.affected_rows, plain.last_insert_id, plain.warnings),
            (
                tracked.affected_rows,
                tracked.last_insert_id,
                tracked.warnings
            )
        );
        // The info string's own length prefix is copied as the server wrote it.
        assert!(plain.info.ends_with(&tracked.info));
        assert_eq!(plain.session_state, None);
    }
}

fuzz_target!(|input: Input| {
    let mut rs = Response::new(input.expect.into(), input.caps, input.mariadb_caps);
    for (i, wire) in input.packets.iter().enumerate() {
        let payload = &wire.payload[..];
        if rs.is_done() {
            assert!(rs.on_packet(payload).is_err(), "a packet after the end");
            return;
        }
        let len = if wire.spans_chunks {
            MAX_CHUNK
        } else {
            payload.len()
        };
        if !rs.needs_whole(payload.first().copied(), len) {
            if rs.on_streamed().is_err() {
                return;
            }
            continue;
        }
        let Ok(event) = rs.on_packet(payload) else {
            return;
        };
        match event {
            // The relay rewrites the statement id in place: bytes 1..5 must exist.
            Event::Prepared { .. } => assert!(payload.len() >= 5),
            Event::Ok { .. } => {
                assert!(matches!(payload.first(), Some(0x00 | 0xFE)));
                check_strip(payload, i as u8);
            }
            Event::LocalInfile => rs.after_local_infile(),
            Event::Err => assert!(rs.is_done()),
            Event::Eof { .. } | Event::More | Event::Progress => {}
        }
    }
});
