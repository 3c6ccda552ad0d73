#!/bin/sh
# Installs Debian's chromium and chromium-driver for the report's browser tests
# (tests/report/test_browser.py) where apt and root are available. Best effort: without them those
# tests skip and say which packages are missing (docs/report.md).
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not root or no apt-get; the report's browser tests will skip"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } \
    || echo "note: apt-get could not install chromium chromium-driver; browser tests will skip"
exit 0
