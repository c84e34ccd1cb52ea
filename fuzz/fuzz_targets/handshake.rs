//! Connection-phase messages: the same bytes read as a client's HandshakeResponse41
//! (and SSLRequest prefix), a server greeting and an AuthSwitchRequest. Parsing never
//! panics; what the proxy re-encodes and sends on (a client's response, an auth
//! switch) reads back as the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard::protocol::handshake::{
    is_ssl_request, AuthSwitchRequest, HandshakeResponse, ServerHandshake,
};

/// Encoding a parsed response is stable: the second encoding equals the first.
fn response(data: &[u8]) {
    assert_eq!(
        is_ssl_request(data),
        HandshakeResponse::is_ssl_request(data)
    );
    let Ok(parsed) = HandshakeResponse::parse(data) else {
        return;
    };
    let mut first = BytesMut::new();
    parsed.encode(&mut first);
    assert!(
        !is_ssl_request(&first),
        "a full response read as SSLRequest"
    );
    let again = HandshakeResponse::parse(&first).expect("an encoded response parses");
    let mut second = BytesMut::new();
    again.encode(&mut second);
    assert_eq!(first, second, "re-encoding changed the response");
    let mut ssl = BytesMut::new();
    again.encode_ssl_request(&mut ssl);
    assert_eq!(ssl.len(), 32);
}

fn greeting(data: &[u8]) {
    if let Ok(hs) = ServerHandshake::parse(data) {
        assert_eq!(hs.protocol_version, 10);
        assert!(hs.scramble.len() >= 8);
        let mut out = BytesMut::new();
        hs.encode(&mut out);
    }
}

fn auth_switch(data: &[u8]) {
    if let Ok(req) = AuthSwitchRequest::parse(data) {
        let mut out = BytesMut::new();
        req.encode(&mut out);
        assert_eq!(AuthSwitchRequest::parse(&out).ok(), Some(req));
    }
}

fuzz_target!(|data: &[u8]| {
    response(data);
    greeting(data);
    auth_switch(data);
});
