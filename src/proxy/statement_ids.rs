//! Prepared-statement ids as the client knows them and as the server does.
//!
//! Until a session first moves to another server the two are the same and nothing is
//! mapped. After a move the statements are prepared again and the new server hands out
//! its own ids: from then on the client keeps its ids, commands get the server's id
//! written over the client's, and prepare answers get a fresh client id written over
//! the server's.
//!
//! Invariant: once mapping, every client id in the map is one the client was given
//! and not yet closed; ids handed out are never 0.

use std::collections::HashMap;

use crate::proxy::session::statement_id;

#[derive(Debug)]
pub struct StatementIds {
    /// Client statement id → server statement id.
    map: HashMap<u32, u32>,
    /// Next id handed to the client once ids are mapped.
    next: u32,
    /// Ids are mapped (the session moved at least once).
    mapping: bool,
}

impl Default for StatementIds {
    fn default() -> Self {
        StatementIds {
            map: HashMap::new(),
            next: 1,
            mapping: false,
        }
    }
}

impl StatementIds {
    pub fn is_mapping(&self) -> bool {
        self.mapping
    }

    /// The id the client sees for a statement the server prepared as `server_id`:
    /// the same until the session first moves; afterwards a fresh id.
    pub fn on_prepared(&mut self, server_id: u32) -> u32 {
        if !self.mapping {
            return server_id;
        }
        let client_id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.map.insert(client_id, server_id);
        client_id
    }

    /// Rewrites the statement id after the command byte of `packet` (header
    /// included) to the server's. MariaDB's -1, "the statement just prepared", and
    /// ids the map does not know stay as they are.
    pub fn to_server(&self, packet: &mut [u8]) {
        if !self.mapping {
            return;
        }
        let Some(id) = statement_id(packet) else {
            return;
        };
        if let (Some(server), Some(at)) = (self.map.get(&id), packet.get_mut(5..9)) {
            at.copy_from_slice(&server.to_le_bytes());
        }
    }

    /// COM_STMT_CLOSE in `packet`: rewrites its id and forgets the statement.
    pub fn close(&mut self, packet: &mut [u8]) {
        self.to_server(packet);
        if let Some(id) = statement_id(packet) {
            self.map.retain(|_, s| *s != id);
        }
    }

    /// The server forgot every statement (a reset, a change of user).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The session moved and had no statements to prepare again: ids are mapped from
    /// now on.
    pub fn start_mapping(&mut self) {
        self.mapping = true;
    }

    /// The session moved and its statements were prepared again: `map` is client id
    /// → new server id; `highest` the highest client id in use.
    pub fn moved(&mut self, map: HashMap<u32, u32>, highest: u32) {
        self.next = self.next.max(highest.wrapping_add(1)).max(1);
        self.map = map;
        self.mapping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(cmd: u8, id: u32) -> Vec<u8> {
        let mut p = vec![5, 0, 0, 0, cmd];
        p.extend_from_slice(&id.to_le_bytes());
        p
    }

    #[test]
    fn ids_pass_unchanged_until_the_first_move() {
        let mut ids = StatementIds::default();
        assert_eq!(ids.on_prepared(7), 7);
        let mut p = command(0x17, 7);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(7));
        assert!(!ids.is_mapping());
    }

    #[test]
    fn after_a_move_the_client_keeps_its_ids() {
        let mut ids = StatementIds::default();
        ids.moved(HashMap::from([(1, 40), (3, 41)]), 3);
        let mut p = command(0x17, 3);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(41));
        // A new statement gets a client id past the highest in use.
        assert_eq!(ids.on_prepared(42), 4);
        let mut p = command(0x17, 4);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(42));
        // -1 and unknown ids pass as they are.
        let mut p = command(0x17, u32::MAX);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(u32::MAX));
    }

    #[test]
    fn closing_forgets_the_statement() {
        let mut ids = StatementIds::default();
        ids.moved(HashMap::from([(1, 40), (2, 41)]), 2);
        let mut p = command(0x19, 1);
        ids.close(&mut p);
        assert_eq!(statement_id(&p), Some(40));
        let mut p = command(0x17, 1);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(1), "closed: no longer mapped");
        ids.clear();
        let mut p = command(0x17, 2);
        ids.to_server(&mut p);
        assert_eq!(statement_id(&p), Some(2));
    }

    #[test]
    fn a_move_without_statements_maps_from_then_on() {
        let mut ids = StatementIds::default();
        ids.start_mapping();
        assert_eq!(ids.on_prepared(9), 1);
        assert_eq!(ids.on_prepared(10), 2);
        // Ids never wrap to 0.
        let mut ids = StatementIds::default();
        ids.moved(HashMap::new(), u32::MAX);
        assert_eq!(ids.on_prepared(1), 1);
    }

    #[test]
    fn short_packets_are_left_alone() {
        let mut ids = StatementIds::default();
        ids.moved(HashMap::from([(1, 40)]), 1);
        let mut p = vec![1, 0, 0, 0, 0x19];
        ids.close(&mut p);
        assert_eq!(p, [1, 0, 0, 0, 0x19]);
    }
}
