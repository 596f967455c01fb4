#!/usr/bin/env bash
# Debian packages some tests use: speech with a known transcript (espeak-ng), media conversion (ffmpeg),
# a headless browser that renders the HTML graph export (chromium, plus chromium-driver for Selenium).
# Installed when missing and we are allowed to (root with apt-get); otherwise those tests skip.
set -u
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # Lock::Timeout: wait for another apt run (a parallel `make install`) instead of failing at once.
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    "${need[@]}") >/dev/null 2>&1 \
    || echo "note: could not install ${need[*]}; tests that need them will skip"
else
  echo "note: ${need[*]} not installed (needs root + apt-get); tests that need them will skip"
fi
exit 0
