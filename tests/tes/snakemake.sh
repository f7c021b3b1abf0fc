#!/usr/bin/env bash
# A real workflow engine through the TES API: Snakemake with its TES executor runs
# tests/tes/snakemake/Snakefile against a running service, its files on the service's volume.
#
#   tests/tes/snakemake.sh install         the venv and the executors' image (both cached under
#                                          ~/.cache/submission-helper/, named after a hash of
#                                          requirements.txt and, for the image, its recipe)
#   tests/tes/snakemake.sh image           prints the OCI layout holding the image (tag
#                                          `snakemake`), building it first if it is not cached
#   tests/tes/snakemake.sh run URL VOLUME MOUNT IMAGE WORKDIR [TARGET...]
#                                          runs the workflow (SH_TES_TOKEN: the token)
#
# Snakemake's TES executor shares no file system with its jobs: each job runs Snakemake again
# inside the executor's image, and both sides read and write the workflow's files through a
# storage plugin. The `fs` plugin copies them (with rsync) to and from a folder under a prefix
# that must be the same path on both sides: the volume claim, mounted at MOUNT in the pods.
# Here the volume is a folder of this machine (VOLUME), so `run` gives Snakemake a mount
# namespace of its own in which VOLUME is at MOUNT; the machine's own mounts are not touched.
#
# The image is Debian's (debootstrap, from Debian's packages) with Python, rsync and the same
# pinned Snakemake as the submitting side. A job also installs the storage plugin with pip, and
# the pods reach no package index: the image carries the wheels and tells pip to use only those.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
python="${PYTHON:-python3}"
requirements="$here/snakemake/requirements.txt"
# The Debian release of the image: its Python (3.11) is one Snakemake 9 supports.
SUITE=bookworm

log() { printf 'snakemake: %s\n' "$*" >&2; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# Cache keys: the pinned packages, and for the image also how it is built.
venv_key() { sha256sum <"$requirements" | cut -c1-12; }
image_key() { { cat "$requirements"; echo "$SUITE"; declare -f build_image; } | sha256sum | cut -c1-12; }

# Debian's packages this needs: rsync (the fs storage plugin copies with it) and debootstrap.
packages() {
  local missing=() package
  for package in rsync debootstrap; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Removes the cached folders named PREFIX-* but KEEP: only the versions in use stay.
prune_other() {
  local folder
  for folder in "$cache/$1"-*; do
    [ "$folder" = "$2" ] || [ ! -d "$folder" ] || rm -rf "$folder"
  done
}

# The submitting side: Snakemake, its TES executor and the fs storage plugin.
venv() {
  local venv
  venv="$cache/snakemake-python-$(venv_key)"
  if [ ! -x "$venv/bin/snakemake" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --no-deps -r "$requirements" >&2
    "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; exit 1; }
  fi
  prune_other snakemake-python "$venv"
  echo "$venv"
}

# The executors' image, as an OCI layout (tag `snakemake`).
image() {
  local built
  built="$cache/snakemake-image-$(image_key)"
  if [ ! -f "$built/done" ]; then
    rm -rf "$built"
    mkdir -p "$built"
    build_image "$built" >&2
    touch "$built/done"
  fi
  prune_other snakemake-image "$built"
  echo "$built/oci"
}

build_image() {
  local built=$1 rootfs=$1/rootfs
  log "building the executors' image: Debian $SUITE with Python, rsync and Snakemake"
  debootstrap --variant=minbase --include=python3,python3-venv,rsync "$SUITE" "$rootfs" \
    http://deb.debian.org/debian >"$built/debootstrap.log" 2>&1 ||
    { tail -20 "$built/debootstrap.log" >&2; return 1; }
  # Wheels are built by the image's own Python (pip in the root file system, through this
  # machine's name resolution and certificates), so they fit it whatever Python runs here.
  # Debian 12's pip needs `wheel` to build a package published only as source.
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$rootfs/tmp/ca.crt"
  cp "$requirements" "$rootfs/tmp/requirements.txt"
  chroot "$rootfs" env -i PATH=/usr/bin:/bin HOME=/root PIP_CERT=/tmp/ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 sh -euc '
      python3 -m venv /opt/snakemake
      /opt/snakemake/bin/pip install -q wheel==0.45.1
      /opt/snakemake/bin/pip wheel -q --no-deps -r /tmp/requirements.txt -w /opt/wheels
      /opt/snakemake/bin/pip install -q --no-index --find-links /opt/wheels --no-deps \
        -r /tmp/requirements.txt
      /opt/snakemake/bin/pip check >/dev/null
      /opt/snakemake/bin/python -m snakemake --version >/dev/null'
  rm -rf "$rootfs/tmp/"* "$rootfs/root/.cache" "$rootfs/var/cache/apt/archives/"*.deb \
    "$rootfs/var/lib/apt/lists/"* "$rootfs/usr/share/doc" "$rootfs/usr/share/man" \
    "$rootfs/usr/share/locale"
  : >"$rootfs/etc/resolv.conf"
  chmod 1777 "$rootfs/tmp"
  # The pods run as the payload image's user; give it a name.
  echo 'atlas:x:1000:1000:atlas:/tmp:/bin/bash' >>"$rootfs/etc/passwd"
  echo 'atlas:x:1000:' >>"$rootfs/etc/group"
  umoci init --layout "$built/oci"
  umoci new --image "$built/oci:snakemake"
  umoci insert --image "$built/oci:snakemake" "$rootfs" /
  umoci config --image "$built/oci:snakemake" --config.cmd /bin/bash \
    --config.env PATH=/opt/snakemake/bin:/usr/local/bin:/usr/bin:/bin \
    --config.env HOME=/tmp --config.env PIP_NO_INDEX=1 --config.env PIP_FIND_LINKS=/opt/wheels \
    --config.env PIP_DISABLE_PIP_VERSION_CHECK=1
  umoci gc --layout "$built/oci"
  rm -rf "$rootfs"
}

# Runs the workflow in WORKDIR (its Snakefile and inputs copied there) with VOLUME at MOUNT.
run() {
  local url=$1 volume=$2 mount=$3 image=$4 workdir=$5
  shift 5
  # Installed beforehand (`install`): the tests run where no package index is reachable.
  local venv
  venv="$cache/snakemake-python-$(venv_key)"
  [ -x "$venv/bin/snakemake" ] || { log "not installed: run $0 install first"; exit 1; }
  mkdir -p "$workdir/.tes"
  cp "$here/snakemake/Snakefile" "$workdir/"
  # 0.1.3 prints this file when a task fails (a leftover of its own CI).
  : >"$workdir/.tes/funnel.log"
  cd "$workdir"
  # shellcheck disable=SC2016
  SNAKEMAKE_TES_TOKEN="$SH_TES_TOKEN" GITHUB_WORKSPACE="$workdir/.tes" \
    unshare --mount --propagation private sh -euc '
      volume=$1 mount=$2; shift 2
      parent=$(dirname "$mount")
      [ "$parent" != / ] && [ -d "$parent" ] || { echo "MOUNT must be in a folder other than /" >&2; exit 2; }
      # A fresh tmpfs over the parent, in this namespace only, so MOUNT is made there.
      mount -t tmpfs tmpfs "$parent"
      mkdir "$mount"
      mount --bind "$volume" "$mount"
      exec "$@"' run "$volume" "$mount" \
    "$venv/bin/snakemake" --executor tes --tes-url "$url/ga4gh/tes" \
    --default-storage-provider fs --default-storage-prefix "$mount/snakemake" \
    --container-image "$image" --jobs 4 --latency-wait 10 --printshellcmds "$@"
}

case "${1:-}" in
  install) packages; venv >/dev/null; image >/dev/null ;;
  image) packages; image ;;
  run) shift; [ $# -ge 5 ] || usage; run "$@" ;;
  *) usage ;;
esac
