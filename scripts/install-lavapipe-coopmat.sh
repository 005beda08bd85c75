#!/bin/sh
# A private lavapipe with cooperative matrices, for the subgroup-matrix kernels' tests (test/*subgroup-matrix*).
# Mesa 26.1.6's lavapipe (Debian trixie-backports) implements VK_KHR_cooperative_matrix, so Dawn offers
# 'chromium-experimental-subgroup-matrix' on it (8x8x8 f16). It needs glibc 2.38 or newer, LLVM 19 and friends;
# Debian 12's glibc is 2.36, so the package and its whole trixie dependency closure are unpacked into a prefix of
# their own (default /opt/hlm/lavapipe-coopmat, env HLM_COOPMAT_PREFIX), and node runs under that prefix's dynamic
# loader (scripts/lavapipe-coopmat.sh). The system's apt and dpkg state are never read for packages nor written:
# apt-get runs with its own sources (trixie + trixie-backports), lists, cache and an empty dpkg status.
# About 63 MB downloaded, 308 MB unpacked. Idempotent: when the prefix is complete it says so and does nothing.
# With --check it only says whether the prefix is complete (exit status 0 or 1), as root or not.
set -e
# The version tested; when the archive has moved past it (backports keep only the newest), the newest 26.1 or later.
mesa=26.1.6-1~bpo13+1
oldest=26.1
prefix=${HLM_COOPMAT_PREFIX:-/opt/hlm/lavapipe-coopmat}
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
root=$prefix/root
lib=$root/usr/lib/x86_64-linux-gnu
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
die() {
  echo "install-lavapipe-coopmat.sh: $*" >&2
  exit 1
}
has_coopmat() { grep -q VK_KHR_cooperative_matrix "$lib/libvulkan_lvp.so" 2>/dev/null; }
installed=$(cat "$prefix/.installed" 2>/dev/null || true)
if [ -n "$installed" ] && dpkg --compare-versions "$installed" ge "$oldest" && [ -f "$prefix/lvp_icd.json" ] &&
  [ -x "$lib/ld-linux-x86-64.so.2" ] && has_coopmat; then
  echo "already installed: lavapipe (Mesa $installed, VK_KHR_cooperative_matrix) in $prefix"
  exit 0
fi
[ "${1:-}" != --check ] || exit 1
[ "$(uname -m)" = x86_64 ] || die "the private lavapipe is for amd64 (x86_64) machines; this one is $(uname -m)"
for tool in apt-get dpkg-deb; do
  command -v $tool >/dev/null || die "$tool not found (the private lavapipe is built from Debian packages)"
done
[ -f "$keyring" ] || die "$keyring not found: install the debian-archive-keyring package"
apt=$prefix/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" ||
  die "cannot create $prefix (run as root, or set HLM_COOPMAT_PREFIX to a folder of yours)"
printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\n' "$keyring" trixie "$keyring" trixie-backports \
  >"$apt/sources.list"
: >"$apt/status"
# Read after the system's apt.conf.d (proxies and such still apply), minus its hooks (they refresh system caches).
cat >"$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "/dev/null";
Dir::State::Lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::State::extended_states "$apt/extended_states";
Dir::Cache "$apt/cache";
Dir::Cache::archives "$apt/cache/archives";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear APT::Architectures;
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Debug::NoLocking "true";
EOF
start=$(date +%s)
echo "install-lavapipe-coopmat.sh: downloading Mesa $mesa lavapipe and its trixie closure into $prefix"
apt-get -c "$apt/apt.conf" update -qq --error-on=any || die "apt-get update of trixie and trixie-backports failed"
# The closure of mesa-vulkan-drivers as name=version: with an empty dpkg status, every dependency.
plan() { apt-get -c "$apt/apt.conf" -s install "mesa-vulkan-drivers=$mesa" >"$apt/plan" 2>"$apt/plan.err"; }
if ! plan; then
  versions=$(apt-cache -c "$apt/apt.conf" madison mesa-vulkan-drivers | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  newest=$(echo "$versions" | sort -V | tail -n 1)
  [ -n "$newest" ] && dpkg --compare-versions "$newest" ge "$oldest" ||
    die "apt-get could not resolve mesa-vulkan-drivers=$mesa, and the archive has no $oldest or newer" \
      "(found: $(echo $versions))"
  echo "install-lavapipe-coopmat.sh: $mesa is gone from the archive; using $newest"
  mesa=$newest
  plan || die "apt-get could not resolve mesa-vulkan-drivers=$mesa from trixie-backports: $(cat "$apt/plan.err")"
fi
awk '/^Inst /{v=$3; gsub(/[()]/, "", v); print $2 "=" v}' "$apt/plan" >"$apt/closure"
[ -s "$apt/closure" ] || die "apt-get found no packages to install for mesa-vulkan-drivers=$mesa"
rm -f "$apt"/debs/*.deb
# shellcheck disable=SC2046 # one name=version a word
(cd "$apt/debs" && apt-get -c "$apt/apt.conf" download -qq $(cat "$apt/closure")) ||
  die "downloading $(wc -l <"$apt/closure") packages from deb.debian.org failed"
rm -rf "$root.new"
mkdir -p "$root.new"
for deb in "$apt"/debs/*.deb; do dpkg-deb -x "$deb" "$root.new" || die "dpkg-deb -x $deb failed"; done
grep -q VK_KHR_cooperative_matrix "$root.new/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ||
  die "the unpacked libvulkan_lvp.so does not implement VK_KHR_cooperative_matrix"
rm -f "$prefix/.installed"
rm -rf "$root"
mv "$root.new" "$root"
# The ICD manifest, pointing the Vulkan loader at the private lavapipe.
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
  "$root/usr/share/vulkan/icd.d/lvp_icd.json" >"$prefix/lvp_icd.json"
grep -q "\"$lib/libvulkan_lvp.so\"" "$prefix/lvp_icd.json" || die "could not write $prefix/lvp_icd.json"
has_coopmat || die "$lib/libvulkan_lvp.so does not implement VK_KHR_cooperative_matrix"
echo "$mesa" >"$prefix/.installed"
rm -rf "$apt" # lists and .debs: ~85 MB no longer needed
echo "installed: lavapipe (Mesa $mesa, VK_KHR_cooperative_matrix) in $prefix" \
  "($(du -sm "$prefix" | cut -f1) MB, $(($(date +%s) - start)) s);" \
  "try: sh scripts/lavapipe-coopmat.sh ./bin/run.js devices"
