# Shared by the ci/ scripts: the project cache and small helpers. Source it.
CACHE_DIR="${HARNESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/testware}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HARNESS_CACHE_DIR="$CACHE_DIR"
# Cargo's target directory lies outside the work tree, shared by every checkout
# on this machine, so a fresh clone compiles this workspace's crates but not the
# few hundred dependencies again (cargo's fingerprints decide what is stale, as
# in any target directory). What a run writes for people stays in the work
# tree: target/harness (ci/test points the harness there).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/target-workspace}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Cargo judges a path crate stale by its files' times, and every file of a fresh
# clone is new: each crate of the workspace would compile again in the cached
# target directory although nothing in it changed. So, before anything builds,
# each file git sees (tracked, or new and not ignored) whose content is the one
# the last ci/ script saw at that path gets back the time it had then; any other
# file gets the present time, newer than every build made from other content,
# and the record ($CACHE_DIR/source-times: blob, time, path) is updated. Sound
# as long as whatever builds into the cached target directories goes through
# these scripts (they do, sourcing this file); once per run (process tree).
# The crates that do this (mtime-travel, mtime-rewind, cargo-mtime) record
# absolute paths, which a clone elsewhere does not share, or keep every content
# a path ever had, which would date a reverted file before a newer build.
restore_source_times() {
  local record="$CACHE_DIR/source-times" now
  mkdir -p "$CACHE_DIR"
  now="$(date +%s)"
  (
    cd "$REPO_ROOT"
    flock 9
    git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' path; do [ -f "$path" ] && [ ! -L "$path" ] && printf '%s\n' "$path"; done \
      >"$record.paths"
    git hash-object --stdin-paths <"$record.paths" | paste - "$record.paths" >"$record.now"
    touch "$record"
    awk -F '\t' -v OFS='\t' -v now="$now" \
      'FILENAME == ARGV[1] { blob[$3] = $1; time[$3] = $2; next }
       { t = ($2 in blob && blob[$2] == $1) ? time[$2] : now; print $1, t, $2 }' \
      "$record" "$record.now" >"$record.new"
    mv "$record.new" "$record"
    cut -f2 "$record" | sort -u | while read -r time; do
      awk -F '\t' -v t="$time" '$2 == t { printf "%s%c", $3, 0 }' "$record" \
        | xargs -0 -r touch -m -d "@$time" --
    done
    rm -f "$record.paths" "$record.now"
  ) 9>"$CACHE_DIR/source-times.lock"
}
if [ "${HARNESS_SOURCE_TIMES:-}" != "$REPO_ROOT" ]; then
  restore_source_times
  export HARNESS_SOURCE_TIMES="$REPO_ROOT"
fi

# Installs the `testware` command from this checkout as a user would (cargo
# install), debug build in the workspace's target directory so that it shares
# compilation with the workspace's tests; prints its path.
install_cli() {
  cargo install --locked --debug --quiet --path "$REPO_ROOT/harness/cli" \
    --root "$REPO_ROOT/target/cli" --target-dir "$CARGO_TARGET_DIR" >&2
  echo "$REPO_ROOT/target/cli/bin/testware"
}
