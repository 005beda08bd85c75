#!/bin/sh
# Runs a command on the private lavapipe with cooperative matrices (scripts/install-lavapipe-coopmat.sh), e.g.
#   sh scripts/lavapipe-coopmat.sh ./bin/run.js devices
# The prefix's glibc is newer than the system's, so the command runs under the prefix's dynamic loader with the
# prefix's libraries first: a .js/.mjs/.cjs path or `node` runs with this node, any other command is looked up on
# PATH and must be an ELF executable. Only that process gets the private libraries: the processes it starts use the
# system's (a node it starts sees no cooperative matrices). Sets the Vulkan ICD to the private lavapipe,
# HLM_EXPERIMENTAL=subgroup-matrix, EGL_PLATFORM=surfaceless and XDG_RUNTIME_DIR. Env HLM_COOPMAT_PREFIX: as for the
# install script (default /opt/hlm/lavapipe-coopmat).
prefix=${HLM_COOPMAT_PREFIX:-/opt/hlm/lavapipe-coopmat}
lib=$prefix/root/usr/lib/x86_64-linux-gnu
if [ ! -f "$prefix/lvp_icd.json" ] || [ ! -x "$lib/ld-linux-x86-64.so.2" ]; then
  echo "lavapipe-coopmat.sh: no private lavapipe in $prefix: install it with sh scripts/install-lavapipe-coopmat.sh" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  echo "usage: sh scripts/lavapipe-coopmat.sh <script.js | node | command> [args...]" >&2
  exit 2
fi
node=$(command -v node) || { echo "lavapipe-coopmat.sh: node not found on PATH" >&2; exit 127; }
case $1 in
  node) shift && set -- "$node" "$@" ;;
  *.js | *.mjs | *.cjs) set -- "$node" "$@" ;;
  */*) ;;
  *)
    cmd=$(command -v "$1")
    case $cmd in /*) ;; *) echo "lavapipe-coopmat.sh: $1: no such executable on PATH" >&2 && exit 127 ;; esac
    shift && set -- "$cmd" "$@"
    ;;
esac
export VK_ICD_FILENAMES="$prefix/lvp_icd.json" VK_DRIVER_FILES="$prefix/lvp_icd.json" EGL_PLATFORM=surfaceless
case ${HLM_EXPERIMENTAL:-} in
  *subgroup-matrix*) ;;
  *) export HLM_EXPERIMENTAL="${HLM_EXPERIMENTAL:+$HLM_EXPERIMENTAL,}subgroup-matrix" ;;
esac
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/xdg-$(id -u)"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "$@"
