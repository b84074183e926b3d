#!/usr/bin/env bash
# Installs the pinned helm into the project cache, unless it is already there:
# built from its module on the Go module proxy (helm.sh/helm/v3, cmd/helm) by
# build-go-release.sh, which the testware command embeds beside this script and
# this repository keeps in harness/cluster/assets. Prints the binary's path.
set -euo pipefail
# Shipped inside the testware command, which runs it on first use
# (`testware check`); ci/install-helm runs it in this repository.
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
HELM_VERSION=v3.21.4
build="${HARNESS_GO_RELEASE_SCRIPT:-$(dirname "$0")/build-go-release.sh}"
[ -f "$build" ] || { echo "error: $build is missing (it builds helm)" >&2; exit 1; }
dir="$(bash "$build" helm "$HELM_VERSION")"
echo "$dir/helm"
