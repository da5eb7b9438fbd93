#!/usr/bin/env bash
# The otsyncd image and the docker/compose.yaml topology with podman or Docker,
# whichever is present (CONTAINER_ENGINE=podman|docker to choose; a Docker CLI
# counts only when `docker info` reaches an engine).
#
#   scripts/container.sh base          # the Debian base images, made locally if they cannot be pulled
#   scripts/container.sh build         # base, then docker/Dockerfile -> image otsyncd (prints time and size)
#   scripts/container.sh test-images   # base, then Redis and HAProxy images from Debian's packages
#                                      # (docker/test/), for machines that cannot pull redis:7/haproxy:2.6
#   scripts/container.sh env           # prints the environment the commands below need (podman here)
#
# Base images. docker/Dockerfile starts from debian:$DEBIAN_RELEASE and its
# -slim variant (pinned in the Dockerfile). Where those are missing and cannot
# be pulled (no registry reachable), `base` makes them: debootstrap
# --variant=minbase of Debian 12 from the machine's configured Debian mirror,
# imported under the tag of the point release it holds (/etc/debian_version),
# and a -slim variant without documentation, manuals and translations (what
# the official slim images leave out). The build is then given that release
# (--build-arg DEBIAN_RELEASE=...), so it never reaches for a registry.
#
# podman on this kind of machine: its default runtime (crun) fails on hybrid
# cgroups and the default ulimits exceed the hard limits, so every podman call
# here runs with CONTAINERS_CONF=docker/podman-containers.conf (runc, ulimits
# within the limits); export the same for podman-compose (`env` prints it).
#
# A host whose HTTPS is intercepted (its own CAs in /usr/local/share/ca-certificates, as on the test
# machines) cannot reach the npm registry from inside a build: with podman the build's npm step then
# gets the host's CA bundle (mounted, NODE_EXTRA_CA_CERTS); apt uses Debian's plain-HTTP mirror.
#
# Needs: podman (or docker), debootstrap when the base must be made; as root
# (rootful podman; debootstrap). scripts/install-deps.sh installs them.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"

log() { echo "container.sh: $*" >&2; }
die() { log "$*"; exit 1; }

engine="${CONTAINER_ENGINE:-}"
if [[ -z "$engine" ]]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null 2>&1; then
    engine=podman
  else
    die "neither podman nor a Docker engine is available (apt-get install podman runc debootstrap)"
  fi
fi
[[ "$engine" == podman || "$engine" == docker ]] || die "CONTAINER_ENGINE must be podman or docker"
if [[ "$engine" == podman ]]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/docker/podman-containers.conf}"
fi

image_exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }
# Builds use only local images (base made or pulled above).
no_pull=(--pull=never)
[[ "$engine" == docker ]] && no_pull=(--pull=false)

# The Debian release the Dockerfile pins (ARG DEBIAN_RELEASE=...).
pinned_release() { sed -n 's/^ARG DEBIAN_RELEASE=\(.*\)$/\1/p' "$here/docker/Dockerfile" | head -1; }

# The first Debian mirror apt is configured with (deb822 or one-line sources), else deb.debian.org.
debian_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)"
  [[ -n "$uri" ]] || uri="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    awk '$3 ~ /^bookworm$/ {print $2}' | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# CA certificates this host trusts beyond Debian's (update-ca-certificates' local ones), if any.
host_extra_cas() {
  find /usr/local/share/ca-certificates -name '*.crt' -printf '%f ' 2>/dev/null || true
}

# Sets `release` to the Debian release to build from: the pinned one if its images are here or
# can be pulled, else a locally made one (debootstrap), whose images are made if missing.
release=""
root=""
ensure_base() {
  local pinned
  pinned="$(pinned_release)"
  [[ -n "$pinned" ]] || die "docker/Dockerfile has no ARG DEBIAN_RELEASE=..."
  if image_exists "debian:$pinned" && image_exists "debian:$pinned-slim"; then
    release="$pinned"
    return
  fi
  if [[ "${OTSYNC_PULL_BASE:-1}" == 1 ]] &&
    timeout 60 "$engine" pull "docker.io/library/debian:$pinned" >/dev/null 2>&1 &&
    timeout 60 "$engine" pull "docker.io/library/debian:$pinned-slim" >/dev/null 2>&1; then
    release="$pinned"
    return
  fi
  local local_release_file="${XDG_CACHE_HOME:-$HOME/.cache}/otsync/debian-release"
  if [[ -f "$local_release_file" ]]; then
    release="$(cat "$local_release_file")"
    if image_exists "debian:$release" && image_exists "debian:$release-slim"; then
      log "base: debian:$release and debian:$release-slim (made here earlier)"
      return
    fi
  fi
  command -v debootstrap >/dev/null 2>&1 || die "debian:$pinned cannot be pulled and debootstrap is missing"
  local mirror started
  root="$(mktemp -d "${TMPDIR:-/tmp}/otsync-debian.XXXXXX")"
  trap 'rm -rf "${root:-}"' EXIT
  mirror="$(debian_mirror)"
  started=$SECONDS
  log "base: debian:$pinned cannot be pulled; debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; die "debootstrap failed (log above)"; }
  rm -f "$root.log"
  release="$(cat "$root/etc/debian_version")"
  # As the official images: no package lists or caches in the image, and apt keeps none after an
  # install either (their /etc/apt/apt.conf.d/docker-clean): without it an image's apt-get layer
  # carries every downloaded .deb and the package caches (80 MB for otsyncd's runtime libraries).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  tar -C "$root" -c . | "$engine" import --change 'CMD ["bash"]' - "docker.io/library/debian:$release" >/dev/null
  # -slim: what the official slim images leave out, also for packages installed later.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
CFG
  tar -C "$root" -c . | "$engine" import --change 'CMD ["bash"]' - "docker.io/library/debian:$release-slim" >/dev/null
  mkdir -p "$(dirname "$local_release_file")"
  echo "$release" >"$local_release_file"
  log "base: made debian:$release and debian:$release-slim in $((SECONDS - started)) s"
}

case "$cmd" in
base)
  ensure_base
  echo "DEBIAN_RELEASE=$release"
  ;;
build)
  ensure_base
  tag="${OTSYNC_IMAGE:-otsyncd}"
  started=$SECONDS
  log "build: docker/Dockerfile -> $tag (Debian $release)"
  extra_ca=()
  if [[ "$engine" == podman && -n "$(host_extra_cas)" ]]; then
    # This host's HTTPS is intercepted (a CA of its own is trusted here): the npm step of the build
    # gets the host's bundle, or it cannot reach the registry. (Docker: pass it as a build secret.)
    log "build: the host trusts CAs of its own ($(host_extra_cas)): the build's npm gets the host's bundle"
    extra_ca=(--volume "/etc/ssl/certs/ca-certificates.crt:/run/otsync-host-ca.crt:ro"
      --build-arg "NODE_EXTRA_CA_CERTS=/run/otsync-host-ca.crt")
  fi
  # The build's output on stderr: stdout is the summary line only.
  "$engine" build "${no_pull[@]}" "${extra_ca[@]}" --build-arg "DEBIAN_RELEASE=$release" \
    -f "$here/docker/Dockerfile" -t "$tag" "$here" >&2
  size="$("$engine" image inspect --format '{{.Size}}' "$tag")"
  log "build: $tag built in $((SECONDS - started)) s, $((size / 1000000)) MB"
  echo "IMAGE=$tag BUILD_SECONDS=$((SECONDS - started)) IMAGE_BYTES=$size DEBIAN_RELEASE=$release"
  ;;
test-images)
  ensure_base
  for what in redis haproxy; do
    "$engine" build "${no_pull[@]}" --build-arg "DEBIAN_RELEASE=$release" -f "$here/docker/test/$what.Dockerfile" \
      -t "otsync-test-$what" "$here/docker/test" >/dev/null
    log "test-images: otsync-test-$what built"
  done
  ;;
env)
  [[ "$engine" == podman ]] && echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
  ;;
*)
  echo "usage: $0 base|build|test-images|env" >&2
  exit 2
  ;;
esac
