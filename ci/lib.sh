# Shared by the ci/ scripts: the project cache and small helpers. Source it.
CACHE_DIR="${HARNESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/testware}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HARNESS_CACHE_DIR="$CACHE_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
