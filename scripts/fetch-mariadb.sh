#!/usr/bin/env bash
# Unpack MariaDB 11.8 (Debian 13 "trixie" packages) into a folder, for testing a
# blue/green pair across versions (blue = system MariaDB, green = this build):
#
#   scripts/fetch-mariadb.sh [DIR]          # default: target/mariadb-11.8
#   SWITCHYARD_GREEN_BUILD=target/mariadb-11.8 cargo nextest run --test testbed
#
# Nothing is installed on the system and the system's apt configuration is not
# touched: apt runs against a private sources.list and private state/cache dirs
# under DIR/.apt, and the packages (server core, client core and every shared
# library they need down to libc6) are only unpacked with `dpkg-deb -x`.
# The binaries are then run through the folder's own dynamic loader
# (`DIR/lib64/ld-linux-x86-64.so.2 --library-path ... mariadbd`), which is what
# `switchyard::testbed::Build::from_dir` does.
#
# Environment: DEBIAN_MIRROR (default: the first Debian archive in this machine's own
#              apt sources), DEBIAN_SUITE (default trixie).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo_root/target/mariadb-11.8}
# The machine's own Debian archive: the first URI of a source that carries the main
# suite (deb822 `.sources` files or one-line `sources.list` entries), skipping the
# security archive, which holds no full suites.
system_mirror() {
    {
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/'
    } | grep -v -- '-security' | grep -m1 .
}
mirror=${DEBIAN_MIRROR:-$(system_mirror || true)}
[[ -n "$mirror" ]] || { echo "fetch-mariadb: no Debian archive in the apt sources; set DEBIAN_MIRROR" >&2; exit 1; }
suite=${DEBIAN_SUITE:-trixie}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch-mariadb: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
apt_dir=$dest/.apt
mkdir -p "$apt_dir/etc" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
: >"$apt_dir/state/status"

# Debian 12's debian-archive-keyring (2023.3+deb12u1 and later) carries the trixie
# keys; older keyrings do not, and then we refuse rather than trust blindly.
if gpg --show-keys "$keyring" 2>/dev/null | grep -q "13/$suite" \
    || [[ -e /usr/share/keyrings/debian-archive-$suite-automatic.gpg ]]; then
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/etc/sources.list"
else
    echo "fetch-mariadb: $keyring has no $suite key; upgrade debian-archive-keyring" >&2
    exit 1
fi

apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Parts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::Lists=$apt_dir/state/lists"
    -o "Dir::State::status=$apt_dir/state/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures=amd64"
    -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=1"
    -o "Acquire::Languages=none"
)

start=$(date +%s)
echo "fetch-mariadb: reading the $suite package lists"
apt-get "${apt_opts[@]}" -qq update

# The server and client cores plus their dependency closure, keeping only the
# packages that carry code they load: shared libraries (lib*, which includes libc6,
# and zlib1g).
# Scripts, config and docs packages (mariadb-common, perl, debconf...) are not needed
# because every binary runs with --no-defaults and explicit paths.
roots=(mariadb-server-core mariadb-client-core)
mapfile -t pkgs < <(
    apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "${roots[@]}" \
        | grep -v '^ ' | grep -v '^<' | sort -u \
        | grep -E '^(mariadb-server-core|mariadb-client-core|zlib1g|lib[a-z0-9.+-]+)$' \
        | grep -vE -- '-(perl|dev|doc|bin)$'
)
echo "fetch-mariadb: downloading ${#pkgs[@]} packages: ${pkgs[*]}"
(cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}")

echo "fetch-mariadb: unpacking into $dest"
for deb in "$apt_dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dest"
done

# Find the unpacked dynamic loader (trixie ships it under usr/lib because of the
# merged /usr; /lib64 may be an absolute symlink that would point at the host's
# loader) and give it one stable, relative path: DIR/lib64/ld-linux-x86-64.so.2.
loader=$(find "$dest/usr/lib" -name 'ld-linux-x86-64.so.2' -type f 2>/dev/null | head -n1 || true)
[[ -n "$loader" || ! -d "$dest/lib" ]] || loader=$(find "$dest/lib" -name 'ld-linux-x86-64.so.2' -type f | head -n1 || true)
[[ -n "$loader" ]] || { echo "fetch-mariadb: no ld-linux-x86-64.so.2 unpacked (libc6 missing?)" >&2; exit 1; }
rm -rf "$dest/lib64"
mkdir -p "$dest/lib64"
ln -s "../${loader#"$dest"/}" "$dest/lib64/ld-linux-x86-64.so.2"

# Absolute symlinks inside the tree would escape to the host; make them relative.
while IFS= read -r link; do
    target=$(readlink "$link")
    if [[ "$target" == /* && -e "$dest$target" ]]; then
        ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$dest$target")" "$link"
    fi
done < <(find "$dest" -path "$apt_dir" -prune -o -type l -print)

libpath=$dest/usr/lib/x86_64-linux-gnu:$dest/lib/x86_64-linux-gnu
"$dest/lib64/ld-linux-x86-64.so.2" --library-path "$libpath" "$dest/usr/sbin/mariadbd" --version
"$dest/lib64/ld-linux-x86-64.so.2" --library-path "$libpath" "$dest/usr/bin/mariadb" --version
echo "fetch-mariadb: done in $(($(date +%s) - start)) s; use SWITCHYARD_GREEN_BUILD=$dest"
