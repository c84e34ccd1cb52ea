//! What a command handler emits: [`Line`]s, rendered as text or as JSON.
//!
//! Invariants of the rendering, which `ctl`, scripts and `socat` users rely on:
//! - every rendered line ends in `\n`;
//! - a final line ([`Kind::Ok`] / [`Kind::Err`]) is exactly one line that starts with
//!   `OK` or `ERR` (text) or carries `"type":"ok"` / `"type":"err"` (JSON); newlines in
//!   its message are flattened to `; ` so the last line of a reply is always the result;
//! - a progress message may span several lines; in text each is written as is, in JSON
//!   the message stays one string in one object.

use serde_json::Value;

/// Which kind of line this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something that happened or is being shown; more lines follow.
    Progress,
    /// The command succeeded; the last line.
    Ok,
    /// The command failed; the last line.
    Err,
}

impl Kind {
    /// The JSON `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Progress => "progress",
            Kind::Ok => "ok",
            Kind::Err => "err",
        }
    }

    /// Ok or Err: the line that ends a reply.
    pub fn is_final(self) -> bool {
        !matches!(self, Kind::Progress)
    }
}

/// One line of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: Kind,
    /// Human-readable text.
    pub message: String,
    /// Structured fields for `--json` (an object, or `Null` for none). Ignored by the
    /// text rendering, so the message must say what matters on its own.
    pub data: Value,
}

impl Line {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Line {
            kind,
            message: message.into(),
            data: Value::Null,
        }
    }

    pub fn progress(message: impl Into<String>) -> Self {
        Line::new(Kind::Progress, message)
    }

    pub fn ok(message: impl Into<String>) -> Self {
        Line::new(Kind::Ok, message)
    }

    pub fn err(message: impl Into<String>) -> Self {
        Line::new(Kind::Err, message)
    }

    /// Attaches structured fields. An object's fields are merged into the JSON line;
    /// any other non-null value appears under `"data"`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The text rendering, `\n`-terminated.
    pub fn to_text(&self) -> String {
        match self.kind {
            Kind::Progress => {
                let mut text = self.message.trim_end_matches(['\r', '\n']).to_owned();
                text.push('\n');
                text
            }
            Kind::Ok => final_text("OK", &self.message),
            Kind::Err => final_text("ERR", &self.message),
        }
    }

    /// The JSON rendering: one object, one line, `\n`-terminated, `type` and
    /// `message` first (so `grep '"type":"ok"'` works). They win over data fields of
    /// the same name.
    pub fn to_json(&self) -> String {
        let mut text = format!(
            "{{\"type\":\"{}\",\"message\":{}",
            self.kind.as_str(),
            Value::from(self.message.as_str())
        );
        let mut field = |key: &str, value: &Value| {
            text.push(',');
            text.push_str(&Value::from(key).to_string());
            text.push(':');
            text.push_str(&value.to_string());
        };
        match &self.data {
            Value::Null => {}
            Value::Object(fields) => fields
                .iter()
                .filter(|(key, _)| !matches!(key.as_str(), "type" | "message"))
                .for_each(|(key, value)| field(key, value)),
            other => field("data", other),
        }
        text.push_str("}\n");
        text
    }

    /// Renders for a client that asked (`json`) or not for JSON.
    pub fn render(&self, json: bool) -> String {
        if json {
            self.to_json()
        } else {
            self.to_text()
        }
    }
}

/// `OK message` / `ERR message` on one line (`OK` alone for an empty message).
fn final_text(word: &str, message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        format!("{word}\n")
    } else {
        format!("{word} {}\n", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text() {
        assert_eq!(
            Line::progress("draining 3 sessions").to_text(),
            "draining 3 sessions\n"
        );
        assert_eq!(Line::progress("a\nb\n").to_text(), "a\nb\n");
        assert_eq!(Line::progress("").to_text(), "\n");
        assert_eq!(
            Line::ok("switched to green").to_text(),
            "OK switched to green\n"
        );
        assert_eq!(Line::ok("").to_text(), "OK\n");
        assert_eq!(
            Line::err("blue unreachable").to_text(),
            "ERR blue unreachable\n"
        );
        assert_eq!(
            Line::err("first\n\nsecond\n").to_text(),
            "ERR first; second\n"
        );
    }

    #[test]
    fn text_ignores_data() {
        let line = Line::ok("2 sessions").with_data(json!({"sessions": 2}));
        assert_eq!(line.to_text(), "OK 2 sessions\n");
    }

    #[test]
    fn json_merges_data() {
        let line = Line::progress("paused").with_data(json!({"phase": "paused", "held": 4}));
        let text = line.to_json();
        assert!(text.ends_with('\n') && !text.trim_end().contains('\n'));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"type": "progress", "message": "paused", "phase": "paused", "held": 4})
        );
    }

    #[test]
    fn json_reserved_keys_win_and_non_objects_nest() {
        let line = Line::err("no").with_data(json!({"type": "ok", "message": "yes"}));
        let value: Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(value, json!({"type": "err", "message": "no"}));

        let line = Line::ok("list").with_data(json!([1, 2]));
        let value: Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"type": "ok", "message": "list", "data": [1, 2]})
        );
    }

    #[test]
    fn json_type_comes_first_and_escapes() {
        let line = Line::ok("say \"hi\"\n").with_data(json!({"a": "\u{1}"}));
        assert_eq!(
            line.to_json(),
            "{\"type\":\"ok\",\"message\":\"say \\\"hi\\\"\\n\",\"a\":\"\\u0001\"}\n"
        );
    }

    #[test]
    fn json_multiline_message_stays_one_line() {
        let text = Line::progress("a\nb").to_json();
        assert_eq!(text.matches('\n').count(), 1);
        assert_eq!(
            Line::progress("x").render(true),
            Line::progress("x").to_json()
        );
        assert_eq!(Line::progress("x").render(false), "x\n");
    }
}
