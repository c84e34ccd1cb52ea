//! Reading arbitrary rows over a control connection, for callers above this layer that
//! build their own statements (data verification). Same bounds as every other call.

use mysql_async::Row;

use super::{Control, ControlError};

impl Control {
    /// Run one statement bounded by the connection's timeout and return all its rows.
    /// `what` names the statement in errors.
    pub async fn query_rows(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<Vec<Row>, ControlError> {
        let timeout = self.timeout;
        self.run(what, sql, timeout).await
    }
}
