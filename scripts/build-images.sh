#!/usr/bin/env bash
# Build systemd base images for the test platforms from their archives (no container registry
# needed): debootstrap a minimal root, copy the host's CA bundle in, `docker import` it.
# Images that already exist are skipped. Names come from the environment, so a user with a
# registry can point molecule at stock images instead (and skip this script):
#   CELERY_TUNING_IMAGE_DEBIAN12 (default authops/debian12-systemd)
#   CELERY_TUNING_IMAGE_DEBIAN13 (default authops/debian13-systemd)
#   CELERY_TUNING_IMAGE_UBUNTU2404 (default authops/ubuntu2404-systemd)
# python3-apt is included as on a standard server install: apt in check mode needs it.
# Usage: scripts/build-images.sh [debian12|debian13|ubuntu2404 ...]   (default: all three)
set -euo pipefail

log() { printf 'build-images: %s\n' "$*" >&2; }

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
UBUNTU_MIRROR=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
WORK=${CELERY_TUNING_IMAGE_WORKDIR:-/var/tmp/celery-tuning-images}
PACKAGES=python3,python3-apt,python3-venv,sudo,procps,systemd,systemd-sysv,dbus,ca-certificates
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

image_name() {
  case "$1" in
    debian12) echo "${CELERY_TUNING_IMAGE_DEBIAN12:-authops/debian12-systemd}" ;;
    debian13) echo "${CELERY_TUNING_IMAGE_DEBIAN13:-authops/debian13-systemd}" ;;
    ubuntu2404) echo "${CELERY_TUNING_IMAGE_UBUNTU2404:-authops/ubuntu2404-systemd}" ;;
    *) log "unknown platform '$1' (use debian12, debian13 or ubuntu2404)"; exit 2 ;;
  esac
}

need_tools() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
  fi
}

ubuntu_keyring() {
  # bookworm has no ubuntu-keyring package: take the keyring out of the Ubuntu archive's own .deb.
  local dir="$WORK/ubuntu-keyring" deb
  if [ -s "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg" ]; then
    echo "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg"
    return
  fi
  mkdir -p "$dir"
  # Find the .deb through the archive's own package index (the pool has no directory listing).
  deb=$(curl -fsSL "$UBUNTU_MIRROR/dists/noble/main/binary-amd64/Packages.gz" | gunzip \
    | awk '/^Package: ubuntu-keyring$/ {f = 1} f && /^Filename:/ {print $2; exit}')
  [ -n "$deb" ] || { log "no ubuntu-keyring in $UBUNTU_MIRROR/dists/noble/main"; exit 1; }
  curl -fsSL -o "$dir/ubuntu-keyring.deb" "$UBUNTU_MIRROR/$deb"
  dpkg-deb -x "$dir/ubuntu-keyring.deb" "$dir"
  echo "$dir/usr/share/keyrings/ubuntu-archive-keyring.gpg"
}

build() {
  local platform=$1 name root suite mirror extra=()
  name=$(image_name "$platform")
  if docker image inspect "$name" >/dev/null 2>&1; then
    log "$name exists, skipping"
    return
  fi
  need_tools
  case "$platform" in
    debian12) suite=bookworm; mirror=$DEBIAN_MIRROR ;;
    debian13) suite=trixie; mirror=$DEBIAN_MIRROR ;;
    ubuntu2404)
      suite=noble; mirror=$UBUNTU_MIRROR
      extra=(--components=main,universe "--keyring=$(ubuntu_keyring)")
      # bookworm's debootstrap has no script for noble; gutsy's is the one all later Ubuntus use.
      [ -e /usr/share/debootstrap/scripts/noble ] || ln -s gutsy /usr/share/debootstrap/scripts/noble
      ;;
  esac
  root="$WORK/$platform"
  rm -rf "$root"
  mkdir -p "$root"
  log "debootstrap $suite into $root (a few minutes)"
  debootstrap --variant=minbase "--include=$PACKAGES" "${extra[@]}" "$suite" "$root" "$mirror" \
    >"$WORK/$platform.log" 2>&1 || { tail -n 40 "$WORK/$platform.log" >&2; exit 1; }
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  # No apt caches or machine-id in the image: systemd makes a new machine-id on first boot.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  : >"$root/etc/machine-id"
  log "importing $name"
  tar -C "$root" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$name" >/dev/null
  rm -rf "$root"
  log "$name built"
}

mkdir -p "$WORK"
platforms=("$@")
[ ${#platforms[@]} -gt 0 ] || platforms=(debian12 debian13 ubuntu2404)
for p in "${platforms[@]}"; do
  build "$p"
done
