//! `COM_CHANGE_USER`: the payload after the command byte, read with the capabilities
//! given by the input's first four bytes. Parsing never panics, and what the proxy
//! re-encodes for the backend reads back as the same request.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::constants::COM_CHANGE_USER;
use switchyard::protocol::handshake::ChangeUser;

fuzz_target!(|data: &[u8]| {
    let Some((caps, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let caps = u32::from_le_bytes(*caps);
    let Ok(parsed) = ChangeUser::parse(payload, caps) else {
        return;
    };
    let mut out = BytesMut::new();
    parsed.encode(&mut out, caps);
    assert_eq!(out.first(), Some(&COM_CHANGE_USER));
    let again = ChangeUser::parse(out.get(1..).unwrap_or_default(), caps);
    assert_eq!(again.ok(), Some(parsed), "re-encoding changed the request");
});
