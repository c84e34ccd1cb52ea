//! A benchmark's report: markdown (and SVG plots beside it) under `target/bench/`,
//! headed by what was run and the machine it ran on.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// The folder reports go to: `target/bench/` (or `$CARGO_TARGET_DIR/bench/`).
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

/// A markdown document being written.
pub struct Report {
    name: String,
    text: String,
    plots: Vec<(String, String)>,
}

impl Report {
    /// A report `NAME.md` titled `title`, whose first lines say how to regenerate it
    /// (`command`) and describe the machine (`machine`, from [`super::machine::describe`]).
    pub fn new(name: &str, title: &str, command: &str, machine: &[(String, String)]) -> Report {
        let mut text = format!("# {title}\n\nRegenerate with `{command}`.\n\n## Machine\n\n");
        for (what, value) in machine {
            let _ = writeln!(text, "- {what}: {value}");
        }
        text.push('\n');
        Report {
            name: name.to_owned(),
            text,
            plots: Vec::new(),
        }
    }

    /// A `## heading`.
    pub fn section(&mut self, heading: &str) {
        let _ = write!(self.text, "## {heading}\n\n");
    }

    /// A paragraph (or any markdown block).
    pub fn paragraph(&mut self, text: &str) {
        self.text.push_str(text.trim_end());
        self.text.push_str("\n\n");
    }

    /// A table: a header row and rows of cells.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.text, "| {} |", header.join(" | "));
        let _ = writeln!(self.text, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let _ = writeln!(self.text, "| {} |", row.join(" | "));
        }
        self.text.push('\n');
    }

    /// An SVG plot saved as `NAME-SUFFIX.svg` beside the report and shown in it.
    pub fn plot(&mut self, suffix: &str, caption: &str, svg: String) {
        let file = format!("{}-{suffix}.svg", self.name);
        let _ = write!(self.text, "![{caption}]({file})\n\n");
        self.plots.push((file, svg));
    }

    /// The markdown so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Writes the report and its plots; returns the markdown file's path.
    pub fn write(&self) -> Result<PathBuf, String> {
        let dir = dir();
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (file, svg) in &self.plots {
            let path = dir.join(file);
            fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let path = dir.join(format!("{}.md", self.name));
        fs::write(&path, &self.text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}
