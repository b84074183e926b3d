#!/usr/bin/env bash
# Builds the commands of one release of a Go project from the Go module proxy
# into the project cache, keyed by project and version, unless they are there
# already. Prints the directory holding them.
#
#   build-go-release.sh kubernetes v1.37.2   kube-apiserver, -controller-manager,
#                                            -scheduler, kubelet, kube-proxy
#   build-go-release.sh etcd v3.6.16         etcd
#   build-go-release.sh helm v3.21.4         helm
#   build-go-release.sh influxdb v1.13.2     influxd
#
# Such a project's root go.mod replaces the modules it publishes from the same
# tree with local paths (Kubernetes: k8s.io/api, client-go, kubelet, ... =>
# ./staging/...; etcd: api, client, pkg => ../...), which do not apply to a
# dependent module, so `go install module/cmd@version` fails. A wrapper module
# requires the project at the release and replaces each such module with its
# published version of the same release; the commands are the wrapper's tools.
# Built as upstream builds them (static, its tags, the version stamped). Needs
# the machine's Go (>= the release's go line) and the Go module proxy. Run by
# the testware command when they are missing (it embeds this script), with
# HARNESS_CACHE_DIR set.
set -euo pipefail
CACHE_DIR="${HARNESS_CACHE_DIR:?HARNESS_CACHE_DIR names the project cache}"
usage="usage: build-go-release.sh kubernetes|etcd|helm|influxdb vX.Y.Z"
PROJECT="${1:?$usage}"
VERSION="${2:?$usage}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ "$VERSION" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "'$VERSION' is not a release version (like v1.37.2)"
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}" patch="${BASH_REMATCH[3]}"
# Per project: the module, the version its sibling modules are published at,
# the commands, build tags, what `--version` says, and how long a cold build takes.
tags="" ldflags="-s -w" cgo=0 build_tools=()
case "$PROJECT" in
  kubernetes)
    [ "$major" = 1 ] || die "Kubernetes releases are v1.x.y, not $VERSION"
    module=k8s.io/kubernetes
    siblings="v0.$minor.$patch"
    packages=(cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy)
    tags=selinux,notest,grpcnotrace
    # hack/lib/version.sh stamps both packages; without it they say v0.0.0-master.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    reports() { [ "$("$1/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $VERSION" ]; }
    took="about 12 min on 2 cores"
    ;;
  etcd)
    module=go.etcd.io/etcd/server/v3
    siblings="$VERSION"
    packages=(.)
    binary_name=etcd
    # (Read whole: grep -q would end the pipe early, and pipefail fail it.)
    reports() { [[ "$("$1/etcd" --version 2>/dev/null)" == "etcd Version: ${VERSION#v}"$'\n'* ]]; }
    took="about 1 min on 2 cores"
    ;;
  helm)
    module="helm.sh/helm/v$major"
    siblings="$VERSION"
    packages=(cmd/helm)
    ldflags+=" -X $module/internal/version.version=$VERSION -X $module/internal/version.gitTreeState=clean"
    reports() { [ "$("$1/helm" version --template '{{.Version}}' 2>/dev/null)" = "$VERSION" ]; }
    took="about 3 min on 2 cores"
    ;;
  influxdb)
    [ "$major" = 1 ] || die "InfluxDB OSS releases built here are v1.x.y, not $VERSION"
    module=github.com/influxdata/influxdb
    siblings="$VERSION"
    packages=(cmd/influxd)
    # Flux's engine (libflux) is Rust, linked through cgo: InfluxData's
    # pkg-config wrapper answers `pkg-config flux` by building it with cargo
    # (from crates.io) into GOCACHE. Flux pins an older Rust in its
    # rust-toolchain.toml; the machine's default one builds it.
    cgo=1
    build_tools=(github.com/influxdata/pkg-config)
    ldflags+=" -X main.version=$VERSION -X main.branch=$major.$minor"
    reports() { [[ "$("$1/influxd" version 2>/dev/null)" == "InfluxDB $VERSION "* ]]; }
    took="about 5 min on 2 cores"
    ;;
  *) die "unknown project '$PROJECT' ($usage)" ;;
esac
root="$CACHE_DIR/$PROJECT/$VERSION"
target="$root/bin"
if [ -d "$target" ] && reports "$target"; then
  echo "$target"; exit 0
fi

command -v go >/dev/null || die "go is needed to build $PROJECT $VERSION (hint: install Go >= 1.26)"
# Modules and compiled packages live in the project cache: another release
# reuses what it shares with this one, and nothing lands in ~/go.
export GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS=-mod=mod GOTOOLCHAIN=local
work="$root/module"
rm -rf "$work" && mkdir -p "$work"

info="$(cd "$work" && go mod download -json "$module@$VERSION")" \
  || die "the Go module proxy did not serve $module@$VERSION: $(printf '%s' "$info" | sed -n 's/^\s*"Error": "\(.*\)",\?$/\1/p')"
json_field() { printf '%s\n' "$info" | sed -n "s/^\s*\"$1\": \"\(.*\)\",\?$/\1/p" | head -n 1; }
upstream_mod="$(json_field GoMod)"
[ -f "$upstream_mod" ] || die "no go.mod for $module@$VERSION"
commit="$(json_field Hash)"
case "$PROJECT" in
  kubernetes) for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      [ -n "$commit" ] && ldflags+=" -X $pkg.gitCommit=$commit"; done ;;
  etcd) [ -n "$commit" ] && ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=${commit:0:7}" ;;
  helm) [ -n "$commit" ] && ldflags+=" -X $module/internal/version.gitCommit=$commit" ;;
  influxdb) [ -n "$commit" ] && ldflags+=" -X main.commit=${commit:0:10}" ;;
esac
go_line="$(awk '$1 == "go" { print $2; exit }' "$upstream_mod")"
# Every replace of upstream into its own tree (`=> ./x` or `=> ../x`), single
# lines or inside a replace block, to the published module of the same release.
local_replaced="$(sed 's/^replace //' "$upstream_mod" \
  | awk '$2 == "=>" && $3 ~ /^\.\.?\// && $3 !~ /FORBIDDEN/ { print $1 }')"
{
  printf 'module testware.invalid/%s-build\n\ngo %s\n\nrequire %s %s\n' "$PROJECT" "$go_line" "$module" "$VERSION"
  if [ -n "$local_replaced" ]; then
    printf '\nreplace (\n'
    for m in $local_replaced; do printf '\t%s => %s %s\n' "$m" "$m" "$siblings"; done
    printf ')\n'
  fi
  printf '\ntool (\n'
  for p in "${packages[@]}"; do
    [ "$p" = . ] && printf '\t%s\n' "$module" || printf '\t%s/%s\n' "$module" "$p"
  done
  for t in "${build_tools[@]}"; do printf '\t%s\n' "$t"; done
  printf ')\n'
} >"$work/go.mod"
log "$PROJECT $VERSION: resolving its modules from the Go module proxy"
(cd "$work" && go mod tidy >"$work/tidy.log" 2>&1) \
  || { tail -n 20 "$work/tidy.log" >&2; die "resolving the modules of $PROJECT $VERSION failed (log above)"; }

# Tools the build itself runs, at the versions upstream's go.mod pins.
for t in "${build_tools[@]}"; do
  (cd "$work" && go build -o "$work/${t##*/}" "$t" >>"$work/build.log" 2>&1) \
    || { tail -n 30 "$work/build.log" >&2; die "building $t for $PROJECT $VERSION failed (log above)"; }
done
if [ "$PROJECT" = influxdb ]; then
  command -v cargo >/dev/null || die "cargo is needed to build Flux's library for influxd (hint: install Rust)"
  export PKG_CONFIG="$work/pkg-config"
  # Flux's rust-toolchain.toml names 1.83, which rustup would fetch: the
  # machine's default toolchain builds it instead (without rustup there is
  # nothing to override).
  if command -v rustup >/dev/null; then
    RUSTUP_TOOLCHAIN="$(rustup default 2>/dev/null | cut -d' ' -f1)"
    export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"
  fi
fi
log "$PROJECT $VERSION: building ${packages[*]} ($took cold, once)"
started=$(date +%s)
rm -rf "$target.tmp" && mkdir -p "$target.tmp"
import_paths=()
for p in "${packages[@]}"; do
  [ "$p" = . ] && import_paths+=("$module") || import_paths+=("$module/$p")
done
output="$target.tmp/"
[ -n "${binary_name:-}" ] && output="$target.tmp/$binary_name"
(cd "$work" && CGO_ENABLED=$cgo go build -trimpath ${tags:+-tags "$tags"} \
   -ldflags "$ldflags" -o "$output" "${import_paths[@]}" >"$work/build.log" 2>&1) \
  || { tail -n 30 "$work/build.log" >&2; die "the build of $PROJECT $VERSION failed (log above)"; }
reports "$target.tmp" || die "the $PROJECT binaries built do not report $VERSION"
rm -rf "$target" && mv "$target.tmp" "$target"
log "$PROJECT $VERSION in $target ($(( $(date +%s) - started )) s)"
echo "$target"
