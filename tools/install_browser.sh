#!/bin/sh
# Installs Debian's chromium and chromium-driver, which the report's browser tests drive through
# selenium (headless). Best effort: without root or apt those tests skip; the install never fails.
set -u
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 \
        || command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not root or no apt-get; chromium not installed (browser tests will skip)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } \
    || echo "note: apt-get could not install chromium and chromium-driver"
exit 0
