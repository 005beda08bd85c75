#!/bin/sh
# The Mesa packages the software WebGPU adapter needs (Debian/Ubuntu): EGL and the llvmpipe driver.
# Works as root (containers, which often have no sudo) and as a user (through sudo).
set -e
pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri"
if dpkg -s $pkgs >/dev/null 2>&1; then
  echo "already installed: $pkgs"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then as_root=""; else as_root="sudo"; fi
$as_root apt-get update -qq
$as_root apt-get install -y --no-install-recommends $pkgs
