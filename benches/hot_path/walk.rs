//! The relay's walk over a server's answer, without its sockets: chunk headers read in
//! place, rows and definitions skipped, only the packets the response state machine
//! needs looked at whole, and OK/EOF status (and session tracking, when the OK says
//! state changed) applied to the session state — what `relay::Relay` does per
//! buffered batch, here on one batch holding the whole answer.

use switchyard::protocol::codec::{chunk_header, HEADER_LEN};
use switchyard::protocol::constants::{MAX_CHUNK, SERVER_SESSION_STATE_CHANGED};
use switchyard::protocol::packets::OkPacket;
use switchyard::proxy::response::{Event, Expect, Response};
use switchyard::proxy::state::SessionState;

/// Walks `wire` from its start; returns where the answer ended, or `None` when the
/// bytes end first (the capture then reads more).
pub fn walk(
    wire: &[u8],
    expect: Expect,
    caps: u32,
    mariadb_caps: u32,
    state: &mut SessionState,
) -> Result<Option<usize>, String> {
    let mut rs = Response::new(expect, caps, mariadb_caps);
    let mut pos = 0;
    let mut continued = false;
    while !rs.is_done() || continued {
        let Some((len, _seq)) = wire.get(pos..).and_then(chunk_header) else {
            return Ok(None);
        };
        let end = pos + HEADER_LEN + len;
        if end > wire.len() {
            return Ok(None);
        }
        let payload = &wire[pos + HEADER_LEN..end];
        pos = end;
        if continued {
            continued = len == MAX_CHUNK;
            continue;
        }
        if !rs.needs_whole(payload.first().copied(), len) {
            continued = len == MAX_CHUNK;
            rs.on_streamed().map_err(|e| e.to_string())?;
            continue;
        }
        match rs.on_packet(payload).map_err(|e| e.to_string())? {
            Event::Ok { status } if status & SERVER_SESSION_STATE_CHANGED != 0 => {
                let ok = OkPacket::parse(payload, caps).map_err(|e| e.to_string())?;
                state.on_ok(&ok);
            }
            Event::Ok { status } | Event::Eof { status } => state.on_eof(status),
            _ => {}
        }
    }
    Ok(Some(pos))
}
