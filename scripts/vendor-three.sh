#!/bin/sh
# Vendors three.js from the npm registry into web/static/vendor/three (no CDN at run time):
# the ES module build, the GLTF loader, orbit controls and what they import, and the licence.
# Usage: sh scripts/vendor-three.sh [VERSION]   (run from the repository root when upgrading)
set -eu

VERSION=${1:-0.170.0}
DEST=web/static/vendor/three
FILES="build/three.module.min.js examples/jsm/loaders/GLTFLoader.js examples/jsm/controls/OrbitControls.js
examples/jsm/utils/BufferGeometryUtils.js LICENSE"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "three@$VERSION" >/dev/null && tar xzf "three-$VERSION.tgz")

rm -rf "$DEST"
for file in $FILES; do
    mkdir -p "$DEST/$(dirname "$file")"
    cp "$work/package/$file" "$DEST/$file"
done
printf 'three.js %s from the npm registry (npm pack three@%s), MIT licence: see LICENSE.\n' \
    "$VERSION" "$VERSION" > "$DEST/README"
echo "vendored three.js $VERSION into $DEST"
