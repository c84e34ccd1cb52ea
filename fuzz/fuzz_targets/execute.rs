//! `COM_STMT_EXECUTE` and `COM_STMT_BULK_EXECUTE` requests, for a statement whose
//! parameter count is the input's first two bytes: parsing never panics and re-encodes
//! to the same bytes; the type block found is the statement's size; and putting types
//! into a request that carries none (what the proxy does on a statement's first
//! execution on a new server) yields a request that carries exactly those types,
//! followed by the same values.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::packets::{carried_types, insert_types, types_at, types_len, Execute};

fuzz_target!(|data: &[u8]| {
    let Some((params, payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Real statements have at most 65,535 parameters; a few hundred covers every
    // layout while keeping inputs small.
    let params = u16::from_le_bytes(*params) % 512;
    if let Ok(parsed) = Execute::parse(payload, params) {
        let mut out = BytesMut::new();
        parsed.encode(payload.get(parsed.values_at..).unwrap_or_default(), &mut out);
        assert_eq!(&out[..], payload, "re-encoding changed the request");
    }
    let Some(at) = types_at(payload, params) else {
        assert!(carried_types(payload, params).is_none());
        return;
    };
    if let Some(types) = carried_types(payload, params) {
        assert!(at.present);
        assert_eq!(types.len(), types_len(params));
        return;
    }
    // Types taken from the input itself (cycled), the statement's size.
    let types: Vec<u8> = payload
        .iter()
        .copied()
        .chain(std::iter::repeat(0x0f))
        .take(types_len(params))
        .collect();
    let mut out = BytesMut::new();
    if insert_types(payload, params, &types, &mut out).is_some() {
        assert!(!at.present);
        assert_eq!(out.len(), payload.len() + types.len());
        assert_eq!(carried_types(&out, params), Some(&types[..]));
        let tail = payload.get(at.start..).unwrap_or_default();
        assert_eq!(&out[at.start + types.len()..], tail, "the values moved");
    } else {
        assert!(out.is_empty(), "a refused insert wrote bytes");
    }
});
