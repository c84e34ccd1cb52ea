//! Which accounts can write through `read_only` — the writers a fence does not stop.
//!
//! MySQL (checked on 9.7: the control account's write fails with 1290): the fence
//! there is `super_read_only`, which stops every account, `SUPER` and
//! `CONNECTION_ADMIN` holders included (only replication appliers still write), so
//! the list is always empty.
//!
//! MariaDB:
//! Checked on MariaDB 10.11.19: `READ_ONLY ADMIN` lets an account write on a
//! read-only server, and `ALL PRIVILEGES ON *.*` includes it; `SUPER` alone does *not*
//! any more (MDEV-29596) — before 10.11 it did. The privilege also counts when it comes
//! from a role, default or not (a session can `SET ROLE` at any time), or from
//! `PUBLIC` (10.11+), which gives it to every account.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::sql;
use super::{Control, ControlError, Flavor};

/// The grantee `PUBLIC` stands for every account.
const PUBLIC: &str = "PUBLIC";

/// Whether a privilege name (as `SHOW GRANTS` or `USER_PRIVILEGES` spells it) lets
/// its holder write through `read_only`.
fn bypasses_read_only(privilege: &str, super_counts: bool) -> bool {
    let p = privilege.trim().replace('_', " ").to_ascii_uppercase();
    p == "READ ONLY ADMIN" || p == "ALL PRIVILEGES" || (super_counts && p == "SUPER")
}

/// Whether one `SHOW GRANTS` line grants, on `*.*`, a privilege that bypasses
/// `read_only`. Lines granting roles or privileges on a database are not.
fn grant_line_bypasses(line: &str, super_counts: bool) -> bool {
    let Some(rest) = line.strip_prefix("GRANT ") else {
        return false;
    };
    let Some((privileges, _)) = rest.split_once(" ON *.* TO ") else {
        return false;
    };
    privileges
        .split(',')
        .any(|p| bypasses_read_only(p, super_counts))
}

/// `'user'@'host'`, as `information_schema.USER_PRIVILEGES` names grantees.
fn account(user: &str, host: &str) -> String {
    format!("'{user}'@'{host}'")
}

impl Control {
    /// Accounts (`'user'@'host'`) that can write while the fence is on. MariaDB:
    /// holders of `READ_ONLY ADMIN` (directly, through any role they were granted, or
    /// through `PUBLIC`), and of `SUPER` on servers older than 10.11. Sorted.
    ///
    /// MySQL: none — its fence, `super_read_only`, binds every account (see the module
    /// doc).
    pub async fn users_with_read_only_admin(&mut self) -> Result<Vec<String>, ControlError> {
        if self.flavor() == Flavor::MySql {
            // super_read_only binds every account.
            return Ok(Vec::new());
        }
        let version = self.version().await?;
        let (major, minor) = sql::major_minor(&version)
            .ok_or_else(|| self.unexpected(format!("cannot read version {version:?}")))?;
        let super_counts = (major, minor) < (10, 11);
        let timeout = self.timeout;

        // 1. Direct grants (ALL PRIVILEGES shows here as its parts).
        let mut out = BTreeSet::new();
        let rows = self
            .run(
                "read USER_PRIVILEGES",
                "SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES",
                timeout,
            )
            .await?;
        for row in &rows {
            if let (Some(grantee), Some(privilege)) = (sql::text(row, 0), sql::text(row, 1)) {
                if bypasses_read_only(&privilege, super_counts) {
                    out.insert(grantee);
                }
            }
        }

        // 2. Roles holding it (USER_PRIVILEGES does not list roles), then everyone
        //    granted such a role, directly or through other roles.
        let roles = self
            .column_values(
                "read roles",
                "SELECT User FROM mysql.user WHERE is_role = 'Y'",
            )
            .await?;
        let mut privileged: HashSet<String> = HashSet::new();
        let mut candidates = roles.clone();
        if (major, minor) >= (10, 11) {
            candidates.push(PUBLIC.to_owned());
        }
        for role in &candidates {
            let sql = if role == PUBLIC {
                "SHOW GRANTS FOR PUBLIC".to_owned()
            } else {
                format!("SHOW GRANTS FOR {}", sql::quote_ident(role))
            };
            let grants = self.run("SHOW GRANTS for a role", &sql, timeout).await?;
            if grants
                .iter()
                .filter_map(|row| sql::text(row, 0))
                .any(|line| grant_line_bypasses(&line, super_counts))
            {
                privileged.insert(role.clone());
            }
        }
        let mapping = self
            .run(
                "read roles_mapping",
                "SELECT User, Host, Role FROM mysql.roles_mapping",
                timeout,
            )
            .await?;
        let mut grants: HashMap<(String, String), Vec<String>> = HashMap::new();
        for row in &mapping {
            if let (Some(user), Some(host), Some(role)) =
                (sql::text(row, 0), sql::text(row, 1), sql::text(row, 2))
            {
                grants.entry((user, host)).or_default().push(role);
            }
        }
        let is_role = |user: &str, host: &str| {
            host.is_empty() && (user == PUBLIC || roles.iter().any(|r| r == user))
        };
        // Fixpoint over role-to-role grants: at most one new role per round.
        for _ in 0..=roles.len() {
            let before = privileged.len();
            for ((user, host), granted) in &grants {
                if is_role(user, host) && granted.iter().any(|r| privileged.contains(r)) {
                    privileged.insert(user.clone());
                }
            }
            if privileged.len() == before {
                break;
            }
        }
        for ((user, host), granted) in &grants {
            if !is_role(user, host) && granted.iter().any(|r| privileged.contains(r)) {
                out.insert(account(user, host));
            }
        }

        // 3. PUBLIC: every account.
        if privileged.contains(PUBLIC) {
            let rows = self
                .run(
                    "read accounts",
                    "SELECT User, Host FROM mysql.user WHERE is_role = 'N'",
                    timeout,
                )
                .await?;
            for row in &rows {
                if let (Some(user), Some(host)) = (sql::text(row, 0), sql::text(row, 1)) {
                    out.insert(account(&user, &host));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The first column of every row of `sql`.
    async fn column_values(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<Vec<String>, ControlError> {
        let timeout = self.timeout;
        let rows = self.run(what, sql, timeout).await?;
        Ok(rows.iter().filter_map(|row| sql::text(row, 0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_names() {
        assert!(bypasses_read_only("READ_ONLY ADMIN", false));
        assert!(bypasses_read_only(" read only admin", false));
        assert!(bypasses_read_only("ALL PRIVILEGES", false));
        assert!(!bypasses_read_only("SUPER", false));
        assert!(bypasses_read_only("SUPER", true));
        assert!(!bypasses_read_only("SELECT", true));
    }

    #[test]
    fn grant_lines() {
        assert!(grant_line_bypasses(
            "GRANT READ_ONLY ADMIN ON *.* TO `rr`",
            false
        ));
        assert!(grant_line_bypasses(
            "GRANT SELECT, READ_ONLY ADMIN ON *.* TO `rr` WITH GRANT OPTION",
            false
        ));
        assert!(grant_line_bypasses(
            "GRANT ALL PRIVILEGES ON *.* TO PUBLIC",
            false
        ));
        assert!(!grant_line_bypasses("GRANT SUPER ON *.* TO `rr`", false));
        assert!(grant_line_bypasses("GRANT SUPER ON *.* TO `rr`", true));
        assert!(!grant_line_bypasses(
            "GRANT ALL PRIVILEGES ON `app`.* TO `rr`",
            false
        ));
        assert!(!grant_line_bypasses("GRANT `rr` TO `rr2`", false));
        assert!(!grant_line_bypasses("GRANT USAGE ON *.* TO `rr2`", false));
    }
}
