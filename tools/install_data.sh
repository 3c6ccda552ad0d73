#!/bin/sh
# Installs the real Fashion-MNIST files from Debian's package `dataset-fashion-mnist` into
# /usr/share/datasets/fashion-mnist/ where apt and root are available. Best effort: without them the
# loader still finds a user's own files or downloads the official ones (see docs/data.md).
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not root or no apt-get; Fashion-MNIST will be found elsewhere or downloaded"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } \
    || echo "note: apt-get could not install dataset-fashion-mnist"
exit 0
