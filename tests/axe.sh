#!/usr/bin/env bash
# Fetches axe-core's browser build from the npm registry into FILE, checked against the
# integrity hash the registry publishes for this version; no npm needed.
#   tests/axe.sh FILE
set -euo pipefail
file=${1:?usage: tests/axe.sh FILE}
version=4.14.1
integrity=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
mkdir -p "$(dirname "$file")"
python3 - "$file" "$version" "$integrity" <<'PY'
import base64, hashlib, io, sys, tarfile, urllib.request

file, version, integrity = sys.argv[1:]
url = f"https://registry.npmjs.org/axe-core/-/axe-core-{version}.tgz"
data = urllib.request.urlopen(url, timeout=120).read()
digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
if digest != integrity:
    sys.exit(f"axe-core {version}: integrity {digest} is not the published {integrity}")
with tarfile.open(fileobj=io.BytesIO(data)) as archive:
    script = archive.extractfile("package/axe.min.js").read()
with open(file + ".part", "wb") as out:
    out.write(script)
PY
mv "$file.part" "$file"
echo "axe-core $version: $file"
