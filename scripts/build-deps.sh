#!/usr/bin/env bash
# The build's system tools: the `turbojpeg` crate builds libjpeg-turbo's bundled C sources with
# cmake, and its SIMD code with nasm. Installs them with apt-get (sudo when not root) where
# missing; does nothing when both are there.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
echo "build-deps: apt-get install ${need[*]}"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
