//! The relay over in-memory streams: a scripted server on one end of a pipe, a client
//! on another, the relay between them. Packets are built with the protocol module's
//! encoders.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::protocol::buf::{put_lenenc_bytes, put_lenenc_int};
use crate::protocol::packets::{EofPacket, ErrPacket};

/// Capabilities of the server connection: classic EOF packets, multi-results,
/// session tracking.
const CAPS: u32 = CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_MULTI_RESULTS
    | CLIENT_SESSION_TRACK
    | CLIENT_LOCAL_FILES;
const PIPE: usize = 1 << 20;

/// An answer being written, with its sequence ids.
struct Answer {
    bytes: BytesMut,
    seq: u8,
}

impl Answer {
    fn new() -> Self {
        Answer {
            bytes: BytesMut::new(),
            seq: 1,
        }
    }

    fn packet(&mut self, payload: &[u8]) -> &mut Self {
        self.seq = write_packet(&mut self.bytes, self.seq, payload);
        self
    }

    fn built(&mut self, build: impl FnOnce(&mut BytesMut)) -> &mut Self {
        let mut payload = BytesMut::new();
        build(&mut payload);
        self.packet(&payload)
    }

    fn eof(&mut self, status: u16) -> &mut Self {
        self.built(|p| {
            EofPacket {
                warnings: 0,
                status,
            }
            .encode(p)
        })
    }

    fn ok(&mut self, status: u16) -> &mut Self {
        self.packet(&crate::protocol::packets::ok_payload(status, CAPS))
    }

    fn err(&mut self, code: u16, message: &'static str) -> &mut Self {
        self.built(|p| {
            ErrPacket {
                code,
                sql_state: *b"HY000",
                message: Bytes::from_static(message.as_bytes()),
            }
            .encode(p)
        })
    }

    /// Column count, definitions and (classic) EOF of a text result set.
    fn columns(&mut self, names: &[&str]) -> &mut Self {
        self.built(|p| put_lenenc_int(p, names.len() as u64));
        for name in names {
            self.built(|p| {
                for part in ["def", "test", "t", "t", name, name] {
                    put_lenenc_bytes(p, part.as_bytes());
                }
                p.put_u8(0x0c);
                p.put_u16_le(45); // utf8mb4
                p.put_u32_le(255);
                p.put_u8(0xfd); // VARCHAR
                p.put_u16_le(0);
                p.put_u8(0);
                p.put_u16_le(0);
            });
        }
        self.eof(SERVER_STATUS_AUTOCOMMIT)
    }

    fn row(&mut self, values: &[&str]) -> &mut Self {
        self.built(|p| {
            for v in values {
                put_lenenc_bytes(p, v.as_bytes());
            }
        })
    }

    fn take(&mut self) -> BytesMut {
        self.bytes.split()
    }
}

/// The relay's side of the pipes, and the far ends: the client's and the server's.
struct Pipes {
    proxy: ProxySide,
    client_end: DuplexStream,
    server_end: DuplexStream,
}

/// What the relay works on: its two connections and the session's bookkeeping.
struct ProxySide {
    client: ClientConn<DuplexStream>,
    server: ServerConn<DuplexStream>,
    state: SessionState,
    ids: StatementIds,
}

fn pipes() -> Pipes {
    pipes_for(false)
}

/// `strip_tracking`: the client did not ask for session tracking.
fn pipes_for(strip_tracking: bool) -> Pipes {
    let (client_end, proxy_client) = duplex(PIPE);
    let (server_end, proxy_server) = duplex(PIPE);
    let proxy = ProxySide {
        client: ClientConn::new(
            proxy_client,
            BytesMut::new(),
            strip_tracking,
            1 << 24,
            Duration::from_secs(5),
        ),
        server: ServerConn::new(proxy_server, BytesMut::new(), CAPS, 0, Vec::new(), 7, 1),
        state: SessionState::new(None, 45),
        ids: StatementIds::default(),
    };
    Pipes {
        proxy,
        client_end,
        server_end,
    }
}

impl ProxySide {
    async fn answer(&mut self, expect: Expect) -> Result<Outcome, SessionError> {
        Relay {
            client: &mut self.client,
            server: &mut self.server,
            state: &mut self.state,
            ids: &mut self.ids,
        }
        .answer(expect)
        .await
    }
}

impl Pipes {
    /// Everything the client end can read now (the relay's writes are done).
    async fn client_received(&mut self) -> Vec<u8> {
        self.proxy.client.shutdown().await;
        let mut got = Vec::new();
        self.client_end.read_to_end(&mut got).await.unwrap();
        got
    }
}

#[tokio::test]
async fn a_text_result_set_reaches_the_client_as_it_was_sent() {
    let mut p = pipes();
    let answer = Answer::new()
        .columns(&["id", "name"])
        .row(&["1", "ada"])
        .row(&["2", "grace"])
        .eof(SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS)
        .take();
    // Written in two parts, split inside a row: the relay reads on.
    let (a, b) = answer.split_at(answer.len() - 12);
    p.server_end.write_all(a).await.unwrap();
    let (outcome, ()) = tokio::join!(p.proxy.answer(Expect::ResultSets), async {
        tokio::task::yield_now().await;
        p.server_end.write_all(b).await.unwrap();
    });
    let outcome = outcome.unwrap();
    assert!(!outcome.error);
    assert!(
        p.proxy.state.in_transaction(),
        "the final EOF's status is noted"
    );
    assert_eq!(p.client_received().await, answer.to_vec());
}

#[tokio::test]
async fn several_results_are_followed_to_the_last() {
    let mut p = pipes();
    let more = SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS;
    let answer = Answer::new()
        .columns(&["a"])
        .row(&["1"])
        .eof(more)
        .columns(&["b"])
        .row(&["2"])
        .eof(more)
        .ok(SERVER_STATUS_AUTOCOMMIT)
        .take();
    // The next answer's first packet is already there: it must stay unread.
    let mut next = BytesMut::new();
    write_packet(&mut next, 1, &crate::protocol::packets::ok_payload(0, CAPS));
    p.server_end.write_all(&answer).await.unwrap();
    p.server_end.write_all(&next).await.unwrap();
    let outcome = p.proxy.answer(Expect::ResultSets).await.unwrap();
    assert!(!outcome.error);
    assert_eq!(
        &p.proxy.server.buf[..],
        &next[..],
        "stops at the end of the answer"
    );
    assert_eq!(p.client_received().await, answer.to_vec());
}

#[tokio::test]
async fn local_infile_passes_the_file_and_the_servers_answer() {
    let mut p = pipes();
    let mut request = Answer::new();
    request.built(|b| {
        b.put_u8(0xFB);
        b.put_slice(b"/tmp/data.csv");
    });
    let request = request.take();
    // The client's file: two packets, then the empty one that ends it.
    let mut file = BytesMut::new();
    let seq = write_packet(&mut file, 2, b"1,ada\n");
    let seq = write_packet(&mut file, seq, b"2,grace\n");
    let seq = write_packet(&mut file, seq, b"");
    let mut ok = Answer::new();
    ok.seq = seq;
    let ok = ok.ok(SERVER_STATUS_AUTOCOMMIT).take();

    p.server_end.write_all(&request).await.unwrap();
    let server = async {
        let mut got = vec![0u8; file.len()];
        p.server_end.read_exact(&mut got).await.unwrap();
        p.server_end.write_all(&ok).await.unwrap();
        got
    };
    let client = async {
        let mut got = vec![0u8; request.len()];
        p.client_end.read_exact(&mut got).await.unwrap();
        p.client_end.write_all(&file).await.unwrap();
        got
    };
    let relay = p.proxy.answer(Expect::ResultSets);
    let (outcome, server_got, client_got) = tokio::join!(relay, server, client);
    assert!(!outcome.unwrap().error);
    assert_eq!(client_got, request.to_vec(), "the client got the request");
    assert_eq!(server_got, file.to_vec(), "the server got the whole file");
    assert_eq!(p.client_received().await, ok.to_vec(), "then the OK");
}

#[tokio::test]
async fn an_error_in_the_middle_of_a_result_set_ends_the_answer() {
    let mut p = pipes();
    let answer = Answer::new()
        .columns(&["a"])
        .row(&["1"])
        .err(1317, "Query execution was interrupted")
        .take();
    p.server_end.write_all(&answer).await.unwrap();
    let outcome = p.proxy.answer(Expect::ResultSets).await.unwrap();
    assert!(outcome.error);
    assert!(p.proxy.server.buf.is_empty());
    assert_eq!(p.client_received().await, answer.to_vec());
}

#[tokio::test]
async fn a_server_that_closes_mid_answer_is_an_error() {
    let mut p = pipes();
    let partial = Answer::new().columns(&["a"]).row(&["1"]).take();
    p.server_end.write_all(&partial).await.unwrap();
    // Half a row, then the server goes away.
    p.server_end.write_all(&[9, 0, 0, 5, 3]).await.unwrap();
    p.server_end.shutdown().await.unwrap();
    let result = p.proxy.answer(Expect::ResultSets).await;
    assert!(
        matches!(result, Err(SessionError::Backend(ProtocolError::Io(ref e))) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{result:?}"
    );
    // Rows stream as they come, the half row too: the client sees the answer cut
    // where the server cut it (and then the session closes).
    let mut sent = partial.to_vec();
    sent.extend_from_slice(&[9, 0, 0, 5, 3]);
    assert_eq!(p.client_received().await, sent);
}

#[tokio::test]
async fn ok_packets_lose_tracking_for_a_client_that_did_not_ask() {
    let mut p = pipes_for(true);
    let status = SERVER_STATUS_AUTOCOMMIT | SERVER_SESSION_STATE_CHANGED;
    // A schema change, as session tracking reports it.
    let mut tracked = BytesMut::new();
    crate::protocol::packets::OkPacket {
        header: 0,
        affected_rows: 0,
        last_insert_id: 0,
        status,
        warnings: 0,
        info: Bytes::new(),
        session_state: Some(Bytes::from_static(&[1, 5, 4, b's', b'h', b'o', b'p'])),
    }
    .encode(&mut tracked, CAPS);
    let mut answer = BytesMut::new();
    write_packet(&mut answer, 1, &tracked);
    p.server_end.write_all(&answer).await.unwrap();
    let outcome = p.proxy.answer(Expect::Single).await.unwrap();
    assert!(outcome.state_changed);
    assert_eq!(p.proxy.state.schema.as_deref(), Some("shop"));
    let mut expected = BytesMut::new();
    strip_session_track(&tracked, 1, &mut expected);
    assert_eq!(p.client_received().await, expected.to_vec());
}
