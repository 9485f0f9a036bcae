#!/usr/bin/env bash
# Regenerate every R fixture in tests/fixtures/r/ (see validation/README.md).
# Usage: bash validation/run_all.sh            (from anywhere)
#        SKIP_SLOW=1 bash validation/run_all.sh  (skip sparse30.R, the slow glmer fit)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

scripts=(mba.R clinical_poisson.R clinical_cumlogit.R crossed.R ordinal_data.R real_data.R cbpp_inference.R random_association.R table_designs.R loess_gam.R)
if [[ "${SKIP_SLOW:-0}" != "1" ]]; then
  scripts+=(sparse30.R)
fi

Rscript -e 'cat(R.version.string, "\n"); for (p in c("lme4", "glmmTMB", "TMB", "ordinal", "Matrix", "statmod", "numDeriv", "gam", "jsonlite")) cat(sprintf("  %-9s %s\n", p, as.character(packageVersion(p))))'
for s in "${scripts[@]}"; do
  echo "== $s"
  start=$(date +%s)
  Rscript "$here/$s"
  echo "   ($(( $(date +%s) - start )) s)"
done

python3 - <<'PY'
import glob, json
files = sorted(glob.glob("tests/fixtures/r/*.json"))
for f in files:
    json.load(open(f))
print(f"{len(files)} JSON fixtures parse")
PY
