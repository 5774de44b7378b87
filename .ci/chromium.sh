#!/usr/bin/env bash
# The Chromium the browser tests drive (tests/browser/): Debian's `chromium`, run headless
# through Playwright with `executable_path` (no browser download), and fonts that cover
# Hangul (`fonts-noto-cjk`), so Korean titles render as glyphs, not boxes.
#
#   .ci/chromium.sh    find the browser, installing it where we can; print its path
#
# The browser is $OKR_CHROMIUM when set, else /usr/bin/chromium, else `chromium` on the
# PATH. Where it (or a Hangul font) is missing and we are root with apt-get, `chromium`
# and `fonts-noto-cjk` are installed. The path goes to stdout (nothing when there is no
# browser), one line saying what was done to stderr. No browser is not an error here:
# the browser tests then skip and say why, or fail where OKR_REQUIRE_BROWSER=1 (CI).
# `make test` exports the path as OKR_CHROMIUM.
set -euo pipefail

say() { echo "chromium.sh: $*" >&2; }

find_browser() {
    local candidate
    if [[ -n "${OKR_CHROMIUM:-}" ]]; then
        # A path the user named is the only one tried: another browser would hide their mistake.
        if [[ -x "$OKR_CHROMIUM" ]]; then echo "$OKR_CHROMIUM"; fi
        return 0
    fi
    for candidate in /usr/bin/chromium "$(command -v chromium || true)"; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            echo "$candidate"
            return 0
        fi
    done
}

has_hangul_font() {
    command -v fc-list >/dev/null && [[ -n "$(fc-list ':lang=ko' family)" ]]
}

version_of() {
    # Debian's launcher script prints shell noise on stderr on some hosts.
    "$1" --version 2>/dev/null | head -n 1 || true
}

[[ $# -eq 0 ]] || {
    say "usage: $0 (no arguments)"
    exit 2
}

browser=$(find_browser)
packages=()
[[ -n "$browser" ]] || packages+=(chromium)
has_hangul_font || packages+=(fonts-noto-cjk)

if [[ ${#packages[@]} -eq 0 ]]; then
    say "$(version_of "$browser") at $browser"
    echo "$browser"
    exit 0
fi
if [[ -n "${OKR_CHROMIUM:-}" && -z "$browser" ]]; then
    say "OKR_CHROMIUM=$OKR_CHROMIUM is not an executable: the browser tests will not run"
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    why=$([[ $(id -u) -ne 0 ]] && echo "not root" || echo "no apt-get")
    if [[ -n "$browser" ]]; then
        say "$(version_of "$browser") at $browser; no Hangul font, fonts-noto-cjk not installed ($why)"
        echo "$browser"
    else
        say "Chromium not found, not installed ($why): the browser tests will skip"
    fi
    exit 0
fi

# One line: the outcome completes it once apt-get is done (it takes minutes).
printf 'chromium.sh: installing %s with apt-get: ' "${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >/dev/null 2>&1; then
    echo "apt-get update failed" >&2
elif ! apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1; then
    echo "apt-get install failed" >&2
else
    browser=$(find_browser)
    if [[ -n "$browser" ]]; then
        echo "done, $(version_of "$browser") at $browser" >&2
        echo "$browser"
        exit 0
    fi
    echo "done, but no chromium executable appeared" >&2
fi
# Whatever apt-get did, a browser found before it is still usable.
[[ -z "$browser" ]] || echo "$browser"
