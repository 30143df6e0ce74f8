#!/bin/sh
# Install Debian's Chromium for the console's browser tests, if it is not there yet (idempotent).
# Playwright drives it through executable_path; Playwright's own browser download is never used.
set -e
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "ensure_chromium: /usr/bin/chromium is still missing" >&2; exit 1; }
