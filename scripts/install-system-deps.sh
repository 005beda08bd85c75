#!/bin/sh
# The Mesa packages the software WebGPU adapters need (Debian/Ubuntu): EGL and the llvmpipe driver (OpenGL, the
# default adapter), and Vulkan's loader with lavapipe (the adapter with shader-f16, which the f16 kernel tests use).
# Mesa 24 or newer is needed: Dawn refuses Debian 12's Mesa 22.3 lavapipe, and Mesa 25's llvmpipe ran hlm's 512³
# matmul in ~15% less CPU time. On Debian 12 they come from bookworm-backports (Mesa 25), which this script adds to
# apt's sources; elsewhere (Debian 13, Ubuntu 24.04) from the release itself.
# Then, on amd64, scripts/install-lavapipe-coopmat.sh: a private Mesa 26 lavapipe with cooperative matrices in
# /opt/hlm/lavapipe-coopmat (env HLM_COOPMAT_PREFIX), which the subgroup-matrix tests run on.
# Works as root (containers, which often have no sudo) and as a user (through sudo). HLM_OS_RELEASE and
# HLM_APT_SOURCES (default /etc/os-release and /etc/apt/sources.list.d) exist for the script's test.
set -e
os_release=${HLM_OS_RELEASE:-/etc/os-release}
sources=${HLM_APT_SOURCES:-/etc/apt/sources.list.d}
pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers libvulkan1"
mesa_ok() {
  v=$(dpkg-query -W -f='${Version}' libgl1-mesa-dri 2>/dev/null) || return 1
  w=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  [ "$v" = "$w" ] && dpkg --compare-versions "$v" ge 24 && dpkg -s $pkgs >/dev/null 2>&1
}
if [ "$(id -u)" -eq 0 ]; then as_root=""; else as_root="sudo"; fi
if mesa_ok; then
  echo "already installed: $pkgs (Mesa $(dpkg-query -W -f='${Version}' libgl1-mesa-dri))"
else
  target=""
  if [ "$(. "$os_release" && echo "$ID $VERSION_CODENAME")" = "debian bookworm" ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list "$sources"; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n%s\n' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
        $as_root tee "$sources/bookworm-backports.sources" >/dev/null
    fi
    target="-t bookworm-backports"
  fi
  $as_root apt-get update -qq
  # shellcheck disable=SC2086 # $target is empty or two words
  $as_root apt-get install -y --no-install-recommends $target $pkgs
  if ! mesa_ok; then
    echo "install-system-deps.sh: Mesa 24 or newer was not installed (found $(dpkg-query -W -f='${Version}' \
libgl1-mesa-dri 2>/dev/null || echo none)); hlm needs it for lavapipe's shader-f16" >&2
    exit 1
  fi
fi
case "$(. "$os_release" && echo "$ID $ID_LIKE")" in
  *debian* | *ubuntu*)
    coopmat="$(dirname "$0")/install-lavapipe-coopmat.sh"
    if [ "$(uname -m)" = x86_64 ] && ! sh "$coopmat" --check; then
      $as_root env HLM_COOPMAT_PREFIX="${HLM_COOPMAT_PREFIX:-}" sh "$coopmat"
    fi
    ;;
esac
