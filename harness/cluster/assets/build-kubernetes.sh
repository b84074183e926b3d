#!/usr/bin/env bash
# Builds the Kubernetes node and control-plane binaries from Debian's `kubernetes`
# source package (v1.20.2) into the project cache, keyed by version, unless they
# are there already. Prints the directory holding the binaries.
#
# Takes about 6 minutes of 2 cores; needs golang-go and rsync (the cluster's
# Debian packages). Run by `testware cluster up` when the binaries are missing
# (embedded in the testware command), with HARNESS_CACHE_DIR set.
#
# The vendored github.com/modern-go/reflect2 v1.0.1 of Kubernetes 1.20 is not
# compatible with Go >= 1.18 (Debian's Go is 1.19): kube-apiserver died with
# "unexpected fault address … aeshashbody … reflect2 UnsafeIterate" under load.
# It is replaced by Debian's golang-github-modern-go-reflect2-dev (1.0.2, the
# release that fixed it), as Debian's own build uses the packaged libraries.
set -euo pipefail
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
K8S_VERSION="v1.20.2"
ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
REFLECT2_DEB=golang-github-modern-go-reflect2-dev
REFLECT2_VERSION=1.0.2
# The cache key names the patch, so a cache built without it is not reused
# (components::KUBE_BUILD is the same key).
BUILD_KEY="$K8S_VERSION+reflect2-$REFLECT2_VERSION"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
target="$CACHE_DIR/kubernetes/$BUILD_KEY/bin"

complete() {
  for c in "${COMPONENTS[@]}"; do
    [ -x "$target/$c" ] || return 1
  done
  "$target/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}
if complete; then
  echo "$target"; exit 0
fi

command -v go >/dev/null || die "go is needed to build Kubernetes (hint: apt-get install golang-go)"
if ! dpkg-query -W -f='${Version}' "$REFLECT2_DEB" 2>/dev/null | grep -q "^$REFLECT2_VERSION"; then
  [ "$(id -u)" = 0 ] || die "$REFLECT2_DEB $REFLECT2_VERSION is missing (hint: apt-get install it as root)"
  log "installing $REFLECT2_DEB (reflect2 $REFLECT2_VERSION for Go >= 1.18)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$REFLECT2_DEB" >/dev/null
fi
reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$reflect2_src/reflect2.go" ] || die "$REFLECT2_DEB did not install $reflect2_src"
sources=/etc/apt/sources.list.d/testware-src.sources
if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $DEB_VERSION"; then
  [ "$(id -u)" = 0 ] || die "Debian's kubernetes source package is not visible (hint: add a deb-src line for bookworm, as root)"
  cat > "$sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi

work="$CACHE_DIR/kubernetes/$BUILD_KEY/build"
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
log "fetching Debian source kubernetes $DEB_VERSION"
apt-get source --download-only -qq "kubernetes=$DEB_VERSION" >/dev/null
orig=$(ls kubernetes_*.orig.tar.gz)
echo "$ORIG_SHA256  $orig" | sha256sum --check --status || die "$orig does not match its pinned checksum"
tar -xzf "$orig"
src=$(find . -maxdepth 1 -mindepth 1 -type d | head -n 1)
[ -f "$src/Makefile" ] || die "unexpected source layout in $orig"
vendored="$src/vendor/github.com/modern-go/reflect2"
[ -d "$vendored" ] || die "unexpected source layout: no $vendored"
rm -rf "$vendored" && mkdir -p "$vendored"
find "$reflect2_src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$vendored/" \;
cp "$reflect2_src/LICENSE" "$vendored/" 2>/dev/null || true

log "building ${COMPONENTS[*]} (about 6 min on 2 cores)"
whats=$(printf 'cmd/%s ' "${COMPONENTS[@]}")
# Version stamping: the tarball has no .git; pass the version explicitly.
(cd "$src" && KUBE_GIT_VERSION="$K8S_VERSION" KUBE_GIT_TREE_STATE=clean \
   GOFLAGS=-mod=vendor GOCACHE="$work/gocache" GOPATH="$work/gopath" \
   make WHAT="${whats% }" >"$work/build.log" 2>&1) \
  || { tail -n 30 "$work/build.log" >&2; die "the Kubernetes build failed (log above)"; }

mkdir -p "$target.tmp"
for c in "${COMPONENTS[@]}"; do
  install -m 0755 "$src/_output/local/bin/linux/amd64/$c" "$target.tmp/$c"
done
rm -rf "$target" && mv "$target.tmp" "$target"
complete || die "built binaries do not report $K8S_VERSION"
log "Kubernetes $K8S_VERSION binaries in $target"
echo "$target"
