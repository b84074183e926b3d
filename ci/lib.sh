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

# Installs the `testware` command from this checkout as a user would (cargo
# install), debug build in the workspace's target directory so that it shares
# compilation with the workspace's tests; prints its path.
install_cli() {
  cargo install --locked --debug --quiet --path "$REPO_ROOT/harness/cli" \
    --root "$REPO_ROOT/target/cli" --target-dir "$CARGO_TARGET_DIR" >&2
  echo "$REPO_ROOT/target/cli/bin/testware"
}
