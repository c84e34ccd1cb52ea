//! Packet views: OK (with the capabilities from the input's first four bytes), ERR,
//! EOF, the prepare answer and session-state blocks. Parsing never panics; a parsed
//! packet re-encodes to bytes that parse and re-encode to themselves; session-state
//! entries read back as what was written, and a block yields at most one entry per
//! two bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::packets::{
    is_eof, is_ok_eof, is_progress_report, session_changes, EofPacket, ErrPacket, OkPacket,
    PrepareOk,
};

fn ok(payload: &[u8], caps: u32) {
    let Ok(parsed) = OkPacket::parse(payload, caps) else {
        return;
    };
    let mut first = BytesMut::new();
    parsed.encode(&mut first, caps);
    let again = OkPacket::parse(&first, caps).expect("an encoded OK parses");
    let mut second = BytesMut::new();
    again.encode(&mut second, caps);
    assert_eq!(first, second, "re-encoding changed the OK");
    if let Some(block) = &parsed.session_state {
        changes(block);
    }
}

fn changes(block: &[u8]) {
    let mut count = 0;
    for change in session_changes(block) {
        count += 1;
        let Ok(change) = change else { break };
        let mut out = BytesMut::new();
        change.encode(&mut out);
        let mut back = session_changes(&out);
        assert_eq!(back.next().and_then(Result::ok), Some(change));
        assert!(back.next().is_none());
    }
    assert!(
        count <= block.len() / 2 + 1,
        "more entries than bytes allow"
    );
}

fn err(payload: &[u8]) {
    let progress = is_progress_report(payload);
    let Ok(parsed) = ErrPacket::parse(payload) else {
        return;
    };
    assert_eq!(progress, parsed.code == 0xFFFF);
    let mut out = BytesMut::new();
    parsed.encode(&mut out);
    assert_eq!(ErrPacket::parse(&out).ok(), Some(parsed));
}

fn eof(payload: &[u8]) {
    let classic = is_eof(payload);
    assert!(!classic || is_ok_eof(payload));
    if let Ok(parsed) = EofPacket::parse(payload) {
        assert!(classic);
        let mut out = BytesMut::new();
        parsed.encode(&mut out);
        assert_eq!(EofPacket::parse(&out).ok(), Some(parsed));
    }
}

fn prepare(payload: &[u8]) {
    if let Ok(parsed) = PrepareOk::parse(payload) {
        let mut out = BytesMut::new();
        parsed.encode(&mut out);
        assert_eq!(PrepareOk::parse(&out).ok(), Some(parsed));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((caps, payload)) = data.split_first_chunk::<4>() {
        ok(payload, u32::from_le_bytes(*caps));
    }
    err(data);
    eof(data);
    prepare(data);
    changes(data);
});
