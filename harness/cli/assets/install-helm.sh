#!/usr/bin/env bash
# Installs the pinned helm into the project cache, unless it is already there:
# built from its module on the Go module proxy (helm.sh/helm/v3 or v4, cmd/helm) by
# build-go-release.sh, which the testware command embeds beside this script and
# this repository keeps in harness/cluster/assets. Prints the binary's path.
set -euo pipefail
# Shipped inside the testware command, which runs it on first use
# (`testware check`); ci/install-helm runs it in this repository.
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
# HARNESS_HELM_VERSION chooses: unset or 3 the pinned helm 3, 4 the pinned helm 4
# (helm.sh/helm/v4), else the exact version it names (testware::charts::helm::pinned).
case "${HARNESS_HELM_VERSION:-3}" in
  3) HELM_VERSION=v3.21.4 ;;
  4) HELM_VERSION=v4.3.2 ;;
  v*) HELM_VERSION="$HARNESS_HELM_VERSION" ;;
  *) HELM_VERSION="v$HARNESS_HELM_VERSION" ;;
esac
build="${HARNESS_GO_RELEASE_SCRIPT:-$(dirname "$0")/build-go-release.sh}"
[ -f "$build" ] || { echo "error: $build is missing (it builds helm)" >&2; exit 1; }
dir="$(bash "$build" helm "$HELM_VERSION")"
echo "$dir/helm"
