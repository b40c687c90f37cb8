#!/usr/bin/env bash
# Build systemd base images for the test platforms from their archives (no container registry
# needed): debootstrap a minimal root, copy the host's CA bundle in, `docker import` it.
# Images that already exist are skipped. Names come from the environment, so a user with a
# registry can point molecule at stock images instead (and skip this script):
#   CELERY_TUNING_IMAGE_DEBIAN12 (default authops/debian12-systemd)
#   CELERY_TUNING_IMAGE_DEBIAN13 (default authops/debian13-systemd)
#   CELERY_TUNING_IMAGE_UBUNTU2204 (default authops/ubuntu2204-systemd)
#   CELERY_TUNING_IMAGE_UBUNTU2404 (default authops/ubuntu2404-systemd)
# python3-apt is included as on a standard server install: apt in check mode needs it. So is tzdata
# (priority required on Debian and noble, only important on jammy, so minbase leaves it out there):
# Python's zoneinfo needs it (kombu 5.7 loads ZoneInfo("UTC") on import).
# Usage: scripts/build-images.sh [debian12|debian13|ubuntu2204|ubuntu2404 ...]   (default: all four)
#        scripts/build-images.sh --print-mirrors   (show the mirrors it would use; builds nothing)
# Mirrors (no host name is written here):
#   DEBIAN_MIRROR  default: the host's own Debian archive from its apt sources (the first enabled
#                  `deb` entry for the host's release with `main`, one-line or deb822 format, in
#                  apt's reading order; -security/-updates/-backports entries are skipped), else
#                  debootstrap's built-in default.
#   UBUNTU_MIRROR  default: the host's apt source when the host is Ubuntu, else the mirror that
#                  debootstrap itself uses for Ubuntu suites on this architecture.
# Sourcing the file defines the functions without building anything.
set -euo pipefail

log() { printf 'build-images: %s\n' "$*" >&2; }

# The host's main archive mirror from its apt sources, or nothing. Preferred: a suite equal to the
# host's VERSION_CODENAME; else the first plain suite (no '-' or '/': not -security, -updates, ...).
host_apt_mirror() {
  local codename files=() f
  # shellcheck disable=SC1091  # the host's file, read in a subshell
  codename=$( (. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}") 2>/dev/null || true)
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*; do  # apt reads only *.list and *.sources, sorted by name
    case "$f" in *.list | *.sources) [ -f "$f" ] && files+=("$f") ;; esac
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk -v codename="$codename" '
    function consider(types, uris, suites, comps,   n, s, i, uri) {
      if ((" " types " ") !~ / deb /) return
      split(uris, s, " "); uri = s[1]
      if (uri !~ /^(https?|file):/) return
      if ((" " comps " ") !~ / main /) return
      n = split(suites, s, " ")
      for (i = 1; i <= n; i++) {
        if (codename != "" && s[i] == codename && exact == "") exact = uri
        if (s[i] !~ /[-\/]/ && plain == "") plain = uri
      }
    }
    function flush() {
      if (tolower(st["enabled"]) != "no") consider(st["types"], st["uris"], st["suites"], st["components"])
      delete st; last = ""
    }
    FNR == 1 { if (deb822) flush(); deb822 = FILENAME ~ /\.sources$/ }
    /^[ \t]*#/ { next }
    !deb822 {
      line = $0; sub(/#.*/, "", line); gsub(/\[[^]]*\]/, " ", line)
      n = split(line, w, " ")
      if (n >= 3) { comps = ""; for (i = 4; i <= n; i++) comps = comps " " w[i]; consider(w[1], w[2], w[3], comps) }
      next
    }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (last != "") st[last] = st[last] " " $0; next }
    {
      key = tolower($0); sub(/:.*/, "", key)
      value = $0; sub(/^[^:]*:[ \t]*/, "", value)
      st[key] = value; last = key
    }
    END { if (deb822) flush(); if (exact != "") print exact; else if (plain != "") print plain }
  ' "${files[@]}"
}

# shellcheck disable=SC1091  # the host's file, read in a subshell
host_os_id() { ( . /etc/os-release && printf '%s' "${ID:-}") 2>/dev/null || true; }

# debootstrap's own defaults (nothing when debootstrap is not installed).
debootstrap_debian_default() {
  sed -n 's/^DEF_MIRROR="\(.*\)"$/\1/p' /usr/sbin/debootstrap 2>/dev/null | head -n 1 || true
}
debootstrap_ubuntu_default() {
  # The Ubuntu script's first `case $ARCH` block only calls default_mirror: evaluate just that.
  local script=/usr/share/debootstrap/scripts/gutsy
  [ -f "$script" ] || return 0
  (
    # shellcheck disable=SC2034  # read by the evaluated block
    ARCH=$(dpkg --print-architecture) SUITE=noble
    # shellcheck disable=SC2317  # called by the evaluated block
    default_mirror() { printf '%s\n' "$1"; }
    eval "$(sed -n '1,/^esac/p' "$script")"
  ) | head -n 1
}

# Sets DEBIAN_MIRROR and UBUNTU_MIRROR (environment values win).
resolve_mirrors() {
  local host os
  host=$(host_apt_mirror)
  os=$(host_os_id)
  if [ -z "${DEBIAN_MIRROR:-}" ]; then
    [ "$os" = debian ] && DEBIAN_MIRROR=$host
    DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(debootstrap_debian_default)}
  fi
  if [ -z "${UBUNTU_MIRROR:-}" ]; then
    [ "$os" = ubuntu ] && UBUNTU_MIRROR=$host
    UBUNTU_MIRROR=${UBUNTU_MIRROR:-$(debootstrap_ubuntu_default)}
  fi
}
WORK=${CELERY_TUNING_IMAGE_WORKDIR:-/var/tmp/celery-tuning-images}
PACKAGES=python3,python3-apt,python3-venv,sudo,procps,systemd,systemd-sysv,dbus,ca-certificates,tzdata
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

image_name() {
  case "$1" in
    debian12) echo "${CELERY_TUNING_IMAGE_DEBIAN12:-authops/debian12-systemd}" ;;
    debian13) echo "${CELERY_TUNING_IMAGE_DEBIAN13:-authops/debian13-systemd}" ;;
    ubuntu2204) echo "${CELERY_TUNING_IMAGE_UBUNTU2204:-authops/ubuntu2204-systemd}" ;;
    ubuntu2404) echo "${CELERY_TUNING_IMAGE_UBUNTU2404:-authops/ubuntu2404-systemd}" ;;
    *) log "unknown platform '$1' (use debian12, debian13, ubuntu2204 or ubuntu2404)"; exit 2 ;;
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
  # noble's keyring holds the 2018 archive key, which signs jammy's Release too.
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
  resolve_mirrors
  case "$platform" in
    debian12) suite=bookworm; mirror=$DEBIAN_MIRROR ;;
    debian13) suite=trixie; mirror=$DEBIAN_MIRROR ;;
    ubuntu2204 | ubuntu2404)
      case "$platform" in ubuntu2204) suite=jammy ;; *) suite=noble ;; esac
      mirror=$UBUNTU_MIRROR
      [ -n "$mirror" ] || { log "no Ubuntu mirror known: set UBUNTU_MIRROR"; exit 1; }
      extra=("--components=main,universe" "--keyring=$(ubuntu_keyring)")
      # bookworm's debootstrap has no script for noble (older ones may lack jammy); gutsy's is the
      # one all later Ubuntus use.
      [ -e "/usr/share/debootstrap/scripts/$suite" ] || ln -s gutsy "/usr/share/debootstrap/scripts/$suite"
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

main() {
  if [ "${1:-}" = --print-mirrors ]; then
    resolve_mirrors
    printf 'DEBIAN_MIRROR=%s\nUBUNTU_MIRROR=%s\n' "$DEBIAN_MIRROR" "$UBUNTU_MIRROR"
    return
  fi
  mkdir -p "$WORK"
  local platforms=("$@") p
  [ ${#platforms[@]} -gt 0 ] || platforms=(debian12 debian13 ubuntu2204 ubuntu2404)
  for p in "${platforms[@]}"; do
    build "$p"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
