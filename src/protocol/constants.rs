//! Protocol numbers: capability and status flags, command bytes, error codes and
//! the few fixed limits and names the proxy needs.
//!
//! Values follow the MariaDB/MySQL client-server protocol documentation.

// ---------------------------------------------------------------------------
// Capability flags (the 32 bits exchanged in the handshake).
// ---------------------------------------------------------------------------

/// Old name of bit 0; MySQL clients always set it.
pub const CLIENT_LONG_PASSWORD: u32 = 1;
/// MariaDB's name for bit 0: a MariaDB server clears it to announce that the
/// last 4 reserved handshake bytes carry the extended MariaDB capabilities.
pub const CLIENT_MYSQL: u32 = 1;
pub const CLIENT_FOUND_ROWS: u32 = 1 << 1;
pub const CLIENT_LONG_FLAG: u32 = 1 << 2;
pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
pub const CLIENT_NO_SCHEMA: u32 = 1 << 4;
pub const CLIENT_COMPRESS: u32 = 1 << 5;
pub const CLIENT_ODBC: u32 = 1 << 6;
pub const CLIENT_LOCAL_FILES: u32 = 1 << 7;
pub const CLIENT_IGNORE_SPACE: u32 = 1 << 8;
pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub const CLIENT_INTERACTIVE: u32 = 1 << 10;
pub const CLIENT_SSL: u32 = 1 << 11;
pub const CLIENT_IGNORE_SIGPIPE: u32 = 1 << 12;
pub const CLIENT_TRANSACTIONS: u32 = 1 << 13;
pub const CLIENT_RESERVED: u32 = 1 << 14;
pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub const CLIENT_MULTI_STATEMENTS: u32 = 1 << 16;
pub const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
pub const CLIENT_PS_MULTI_RESULTS: u32 = 1 << 18;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
pub const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
pub const CLIENT_SESSION_TRACK: u32 = 1 << 23;
pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;
/// MySQL 8.0.18+: zstd compression, level given in the handshake response.
pub const CLIENT_ZSTD_COMPRESSION_ALGORITHM: u32 = 1 << 26;
pub const CLIENT_QUERY_ATTRIBUTES: u32 = 1 << 27;
pub const CLIENT_SSL_VERIFY_SERVER_CERT: u32 = 1 << 30;

// ---------------------------------------------------------------------------
// MariaDB extended capabilities (a separate 32-bit word).
// ---------------------------------------------------------------------------

pub const MARIADB_CLIENT_PROGRESS: u32 = 1;
pub const MARIADB_CLIENT_COM_MULTI: u32 = 1 << 1;
pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u32 = 1 << 2;
pub const MARIADB_CLIENT_EXTENDED_METADATA: u32 = 1 << 3;
pub const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

// ---------------------------------------------------------------------------
// Server status flags (OK and EOF packets, handshake).
// ---------------------------------------------------------------------------

pub const SERVER_STATUS_IN_TRANS: u16 = 0x0001;
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
pub const SERVER_QUERY_NO_GOOD_INDEX_USED: u16 = 0x0010;
pub const SERVER_QUERY_NO_INDEX_USED: u16 = 0x0020;
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;
pub const SERVER_STATUS_LAST_ROW_SENT: u16 = 0x0080;
pub const SERVER_STATUS_DB_DROPPED: u16 = 0x0100;
pub const SERVER_STATUS_NO_BACKSLASH_ESCAPES: u16 = 0x0200;
pub const SERVER_STATUS_METADATA_CHANGED: u16 = 0x0400;
pub const SERVER_QUERY_WAS_SLOW: u16 = 0x0800;
pub const SERVER_PS_OUT_PARAMS: u16 = 0x1000;
pub const SERVER_STATUS_IN_TRANS_READONLY: u16 = 0x2000;
pub const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

// ---------------------------------------------------------------------------
// Command bytes (first byte of a client command payload).
// ---------------------------------------------------------------------------

pub const COM_SLEEP: u8 = 0x00;
pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CREATE_DB: u8 = 0x05;
pub const COM_DROP_DB: u8 = 0x06;
pub const COM_REFRESH: u8 = 0x07;
pub const COM_SHUTDOWN: u8 = 0x08;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_INFO: u8 = 0x0A;
pub const COM_CONNECT: u8 = 0x0B;
pub const COM_PROCESS_KILL: u8 = 0x0C;
pub const COM_DEBUG: u8 = 0x0D;
pub const COM_PING: u8 = 0x0E;
pub const COM_TIME: u8 = 0x0F;
pub const COM_DELAYED_INSERT: u8 = 0x10;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_TABLE_DUMP: u8 = 0x13;
pub const COM_CONNECT_OUT: u8 = 0x14;
pub const COM_REGISTER_SLAVE: u8 = 0x15;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_STMT_FETCH: u8 = 0x1C;
pub const COM_DAEMON: u8 = 0x1D;
pub const COM_BINLOG_DUMP_GTID: u8 = 0x1E;
pub const COM_RESET_CONNECTION: u8 = 0x1F;
/// MariaDB only: execute a prepared statement with an array of parameter rows.
pub const COM_STMT_BULK_EXECUTE: u8 = 0xFA;

// ---------------------------------------------------------------------------
// Server error codes the proxy sends or recognises.
// ---------------------------------------------------------------------------

pub const ER_CON_COUNT_ERROR: u16 = 1040;
pub const ER_UNKNOWN_ERROR: u16 = 1105;
/// "Host '…' is blocked because of many connection errors" (max_connect_errors).
pub const ER_HOST_IS_BLOCKED: u16 = 1129;
/// "The MariaDB server is running with the --read-only option so it cannot execute this statement".
pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
/// "Bad handshake" (SQLSTATE 08S01).
pub const ER_HANDSHAKE_ERROR: u16 = 1043;
pub const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
pub const ER_UNKNOWN_COM_ERROR: u16 = 1047;
pub const ER_SERVER_SHUTDOWN: u16 = 1053;
pub const ER_ABORTING_CONNECTION: u16 = 1152;
pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
pub const ER_NET_PACKETS_OUT_OF_ORDER: u16 = 1156;
pub const ER_NET_READ_ERROR: u16 = 1158;
pub const ER_NET_READ_INTERRUPTED: u16 = 1159;
pub const ER_NET_ERROR_ON_WRITE: u16 = 1160;
pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
pub const ER_SPECIFIC_ACCESS_DENIED_ERROR: u16 = 1227;
pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
pub const ER_NOT_SUPPORTED_AUTH_MODE: u16 = 1251;
pub const ER_QUERY_INTERRUPTED: u16 = 1317;
/// MariaDB only: "Connection was killed".
pub const ER_CONNECTION_KILLED: u16 = 1927;

// ---------------------------------------------------------------------------
// Limits and names.
// ---------------------------------------------------------------------------

/// Largest payload a single wire chunk can carry; a chunk of exactly this size
/// means the logical packet continues in the next chunk.
pub const MAX_CHUNK: usize = 0xFF_FFFF;
pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";
/// Collation id of `utf8mb4_general_ci`.
pub const UTF8MB4_GENERAL_CI: u8 = 45;

/// `require_secure_transport=ON` and a login without TLS.
pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
