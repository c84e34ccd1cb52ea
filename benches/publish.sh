#!/usr/bin/env bash
# Publishes the latest benchmark reports: copies target/bench/*.md and *.svg into
# benches/results/ (kept in the repository, so the README can show them) and rewrites
# the README's Performance figures from them: every block between
# `<!-- bench:REPORT:HEADING -->` and `<!-- /bench -->` is replaced by the section of
# benches/results/REPORT.md whose `## ` heading starts with HEADING (its text up to the
# next heading, plots included with their paths made relative to the README).
#
#   cargo bench --bench throughput && … && benches/publish.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

src=${CARGO_TARGET_DIR:-target}/bench
[[ -d $src ]] || { echo "no reports in $src: run the benchmarks first (see README, Performance)" >&2; exit 1; }
mkdir -p benches/results
for f in "$src"/*.md "$src"/*.svg; do
    [[ -e $f ]] || continue
    [[ $(basename "$f") == bed_check.md ]] && continue
    cp "$f" benches/results/
done

python3 - <<'PY'
import pathlib, re, sys

readme = pathlib.Path("README.md")
text = readme.read_text()
block = re.compile(r"(<!-- bench:([\w-]+):([^>]*?) -->\n)(.*?)(<!-- /bench -->)", re.S)

def section(report, heading):
    path = pathlib.Path("benches/results") / f"{report}.md"
    if not path.exists():
        sys.exit(f"README wants {path}, which no benchmark has written: run `cargo bench --bench {report}`")
    lines = path.read_text().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("## ") and l[3:].startswith(heading)), None)
    if start is None:
        sys.exit(f"{path} has no section starting with '## {heading}'")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = "\n".join(lines[start + 1:end]).strip()
    # Plots sit beside the report; the README is two folders up.
    body = re.sub(r"\]\(([\w.-]+\.svg)\)", r"](benches/results/\1)", body)
    return body + "\n"

count = 0
def fill(m):
    global count
    count += 1
    return m.group(1) + "\n" + section(m.group(2), m.group(3).strip()) + "\n" + m.group(5)

readme.write_text(block.sub(fill, text))
print(f"README: {count} block(s) regenerated from benches/results/")
PY
