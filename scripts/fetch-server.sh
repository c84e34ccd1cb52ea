#!/usr/bin/env bash
# Unpack a database server newer than Debian 12's into a folder, for the tests:
#
#   scripts/fetch-server.sh mariadb-11.8 [DIR]   # Debian 13 "trixie"; default DIR target/mariadb-11.8
#   scripts/fetch-server.sh mysql-9.7 [DIR]      # Debian unstable "sid"; default DIR target/mysql-9.7
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
#              apt sources), DEBIAN_SUITE (default: the server's suite above).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
server=${1:-}
case $server in
    mariadb-11.8) default_suite=trixie; roots=(mariadb-server-core mariadb-client-core)
                  server_bin=usr/sbin/mariadbd; client_bin=usr/bin/mariadb ;;
    mysql-9.7)    default_suite=sid; roots=(mysql-server-core mysql-client-core)
                  server_bin=usr/sbin/mysqld; client_bin=usr/bin/mysql ;;
    *) echo "usage: $0 mariadb-11.8|mysql-9.7 [DIR]" >&2; exit 2 ;;
esac
dest=${2:-$repo_root/target/$server}
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
[[ -n "$mirror" ]] || { echo "fetch-server: no Debian archive in the apt sources; set DEBIAN_MIRROR" >&2; exit 1; }
suite=${DEBIAN_SUITE:-$default_suite}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch-server: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
apt_dir=$dest/.apt
mkdir -p "$apt_dir/etc" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
: >"$apt_dir/state/status"

# Debian 12's debian-archive-keyring (2023.3+deb12u1 and later) carries the trixie
# keys (sid is signed with the keys of the newest release); older keyrings do not,
# and then we refuse rather than trust blindly.
if gpg --show-keys "$keyring" 2>/dev/null | grep -qE "13/trixie" \
    || [[ -e /usr/share/keyrings/debian-archive-$suite-automatic.gpg ]]; then
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/etc/sources.list"
else
    echo "fetch-server: $keyring has no $suite key; upgrade debian-archive-keyring" >&2
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
echo "fetch-server: reading the $suite package lists"
apt-get "${apt_opts[@]}" -qq update

# The server and client cores plus their dependency closure, keeping only the
# packages that carry code they load: shared libraries (lib*, which includes libc6,
# and zlib1g).
# Scripts, config and docs packages (mariadb-common, perl, debconf...) are not needed
# because every binary runs with --no-defaults and explicit paths.
mapfile -t pkgs < <(
    apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "${roots[@]}" \
        | grep -v '^ ' | grep -v '^<' | sort -u \
        | grep -E "^($(IFS='|'; echo "${roots[*]}")|zlib1g|lib[a-z0-9.+-]+)\$" \
        | grep -vE -- '-(perl|dev|doc|bin)$'
)
echo "fetch-server: downloading ${#pkgs[@]} packages: ${pkgs[*]}"
(cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}")

echo "fetch-server: unpacking into $dest"
for deb in "$apt_dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dest"
done

# Find the unpacked dynamic loader (trixie ships it under usr/lib because of the
# merged /usr; /lib64 may be an absolute symlink that would point at the host's
# loader) and give it one stable, relative path: DIR/lib64/ld-linux-x86-64.so.2.
loader=$(find "$dest/usr/lib" -name 'ld-linux-x86-64.so.2' -type f 2>/dev/null | head -n1 || true)
[[ -n "$loader" || ! -d "$dest/lib" ]] || loader=$(find "$dest/lib" -name 'ld-linux-x86-64.so.2' -type f | head -n1 || true)
[[ -n "$loader" ]] || { echo "fetch-server: no ld-linux-x86-64.so.2 unpacked (libc6 missing?)" >&2; exit 1; }
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
"$dest/lib64/ld-linux-x86-64.so.2" --library-path "$libpath" "$dest/$server_bin" --version
"$dest/lib64/ld-linux-x86-64.so.2" --library-path "$libpath" "$dest/$client_bin" --version
echo "fetch-server: $server done in $(($(date +%s) - start)) s: $dest"
