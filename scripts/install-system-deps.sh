#!/bin/sh
# System tools the manufacturing side uses for real (Debian 12 packages):
#   prusa-slicer      slicing (PrusaSlicer CLI, headless)
#   linuxcnc-uspace   /usr/bin/rs274, LinuxCNC's standalone G-code interpreter (CNC checks)
#   poppler-utils     pdftotext (job sheet PDF text in tests)
#   zbar-tools        zbarimg (decodes the job sheet's QR code in tests)
#   libpango-1.0-0, libpangoft2-1.0-0   WeasyPrint's text layout (job sheet PDF)
#   chromium          headless browser for the shop's browser tests (driven by Playwright)
#   fonts-dejavu-core  a font for WeasyPrint to set the job sheet in
# Idempotent and fast when everything is present: apt runs only when something is missing.
set -eu

missing=""
need_command() {  # need_command COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need_package() {  # need_package PACKAGE
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$missing $1"
}

need_command prusa-slicer prusa-slicer
need_command rs274 linuxcnc-uspace
need_command pdftotext poppler-utils
need_command zbarimg zbar-tools
need_package libpango-1.0-0
need_package libpangoft2-1.0-0
need_command chromium chromium
need_package fonts-dejavu-core

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "" >&2
        echo "########################################################################" >&2
        echo "## MISSING SYSTEM PACKAGES:$missing" >&2
        echo "## Install them as root:" >&2
        echo "##   apt-get update && apt-get install -y --no-install-recommends$missing" >&2
        echo "## Until then the slicing, CNC and job-sheet integration tests skip" >&2
        echo "## (and FAIL when CI=true)." >&2
        echo "########################################################################" >&2
        echo "" >&2
        exit 0
    fi
else
    SUDO=""
fi

echo "installing system packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # the package list is meant to split
$SUDO apt-get install -y -qq --no-install-recommends $missing
