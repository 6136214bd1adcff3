#!/usr/bin/env sh
# Installs headless Chromium and its WebDriver for the browser tests: Debian's `chromium`
# and `chromium-driver`. Used by .ci/run, and by the tests themselves when the browser is
# missing (tests/src/browser.rs). Elsewhere: install both and set CHROME_BIN and
# CHROMEDRIVER to their paths.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install Chromium and chromedriver, then set CHROME_BIN and CHROMEDRIVER" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "installing the browser needs root: sudo apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
