#!/usr/bin/env bash
# Debian packages some media tests use (speech with a known transcript, media conversion).
# Installed when missing and we are allowed to (root with apt-get); otherwise those tests skip.
set -u
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || echo "note: could not install ${need[*]}; tests that need them will skip"
else
  echo "note: ${need[*]} not installed (needs root + apt-get); tests that need them will skip"
fi
exit 0
