#!/usr/bin/env bash
# Checks that the protos are formatted and lint-clean and that the committed
# code in gen/ is exactly what `buf generate` produces from them.
# Run from the repo root (CI calls it after checkout): proto/check-generated.sh
# The first run builds buf and the plugins with `go tool` (a few minutes cold).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

buf=(go tool -modfile=proto/tools/go.mod buf)

echo "== buf format"
if ! "${buf[@]}" format -d --exit-code; then
  echo "check-generated: protos are not formatted; run: ${buf[*]} format -w" >&2
  exit 1
fi

echo "== buf lint"
"${buf[@]}" lint

echo "== buf generate"
# buf.gen.yaml has no `clean: true` (it would delete the hand-written
# gen/openapiv2/embed.go), so remove generated files here: output whose proto
# is gone then shows up below as a deletion instead of lingering.
find gen -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete 2>/dev/null || true
"${buf[@]}" generate

changes=$(git status --porcelain --untracked-files=all -- gen)
if [ -n "$changes" ]; then
  {
    echo "check-generated: gen/ is out of date with proto/ (or buf.gen.yaml/plugin versions):"
    echo "$changes"
    git --no-pager diff --stat -- gen
    echo "Regenerate with '${buf[*]} generate' and commit the result."
  } >&2
  exit 1
fi
echo "check-generated: OK, gen/ is up to date"
