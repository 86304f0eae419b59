#!/usr/bin/env bash
# Mutation testing of the library core with Stryker.NET (pinned in .config/dotnet-tools.json). Too slow for every CI
# run (tens of minutes per folder on 2 cores): run it before a release and record the score in docs/testing.md.
#
#   tools/mutation.sh [Torch|Data|Persistence|root ...]      (default: all four)
#   MUTATION_TESTS='FullyQualifiedName~Expectations' MUTATION_EXCLUDE='**/Torch/VaeModel.cs' tools/mutation.sh Torch
#   MUTATION_EXCLUDE='**/Vae.ML/VaeTrainer.cs' tools/mutation.sh root   (VaeTrainer.Fit runs in every training test: its
#   mutants get a run of their own with a filter aimed at the trainer; docs/testing.md gives both filters)
#   MUTATION_LABEL=name (report folder, default the folder), MUTATION_ARGS="--log-to-file" (extra Stryker options; the
#   trace log in <report>/logs shows each mutant's result as it comes, the reports appear only at the end),
#   MUTATION_REUSE=1 (reuse the built copy)
#
# Stryker builds and overwrites assemblies in place, so it runs on a copy of the working tree (tracked and untracked,
# not ignored files) under $MUTATION_WORK (default /tmp/vae-ml-mutation); only the reports come back, into
# artifacts/mutation/<folder>/ (ignored by git). Runtime/ is left out on purpose (it talks to ELF files), and so are the
# data sets, now their own project src/Vae.ML.Datasets (network); both are covered by their own tests (docs/testing.md).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${MUTATION_WORK:-/tmp/vae-ml-mutation}"
concurrency="${MUTATION_CONCURRENCY:-1}"
# The CLI, data-set acquisition and native-loading tests exercise code outside the mutated core and take most of the
# suite's time; they are left out (MUTATION_TESTS overrides the filter).
filter="${MUTATION_TESTS:-FullyQualifiedName!~Vae.ML.Tests.Samples&FullyQualifiedName!~Vae.ML.Tests.Datasets&FullyQualifiedName!~Vae.ML.Tests.Runtime}"
folders=("$@")
[ ${#folders[@]} -eq 0 ] && folders=(Torch Data Persistence root)

# MUTATION_REUSE=1 keeps a copy built by an earlier run and only refreshes its sources (Stryker rebuilds the tests
# itself): on a loaded machine the first build of the copy takes longer than many mutants.
if [ "${MUTATION_REUSE:-0}" != 1 ] || [ ! -f "$work/Vae.ML.sln" ]; then
    rm -rf "$work" && mkdir -p "$work"
    fresh=1
else
    fresh=0
fi
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$work"
# The PyTorch cross-checks look for the reference beside the clone (../shared); keep it reachable from the copy.
if [ -z "${VAE_ML_SEED_VAE:-}" ] && [ -f "$repo/../shared/reference/seed_vae.py" ]; then
    export VAE_ML_SEED_VAE="$repo/../shared/reference/seed_vae.py"
fi

cd "$work"
dotnet tool restore >/dev/null
# perTest coverage: each mutant runs only the tests that executed it during the initial run (Stryker's default, stated
# so it stays that way). Arguments of exception constructors (and of the local Bad/bad helpers that build the readers'
# InvalidDataExceptions) are not mutated: they are the human-readable messages, whose key parts (file, column, option
# names) the tests check with wildcards; the conditions that throw are mutated. LogInformation only hands the trainer's
# log line (mutated where it is built) to an ILogger. string.Create: Stryker's mutants of an interpolated string passed
# to its ref handler do not compile (CS1620) and make it drop every mutant of the enclosing method; messages made of
# several parts are therefore built with string.Format, and the few left with one interpolated string stay ignored.
cat >"$work/stryker-config.json" <<'JSON'
{
  "stryker-config": {
    "coverage-analysis": "perTest",
    "ignore-methods": ["*Exception.ctor", "Bad", "bad", "string.Create", "LogInformation"]
  }
}
JSON
# Stryker's design-time analysis does not build project references: the ML.NET publicizer (build/Publicizer) must exist
# before it looks at src/Vae.ML, so build the copy once first.
if [ "$fresh" = 1 ]; then
    dotnet build Vae.ML.sln -c Release >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
fi
for folder in "${folders[@]}"; do
    case "$folder" in
        root) pattern='**/Vae.ML/*.cs' ;;
        Torch|Data|Persistence) pattern="**/Vae.ML/$folder/*.cs" ;;
        *) echo "unknown folder '$folder' (expected Torch, Data, Persistence or root)" >&2; exit 2 ;;
    esac
    # MUTATION_EXCLUDE narrows a run, e.g. '**/Torch/VaeModel.cs' (space-separated globs).
    mutate=(--mutate "$pattern")
    read -r -a excludes <<<"${MUTATION_EXCLUDE:-}"
    for excluded in "${excludes[@]}"; do mutate+=(--mutate "!$excluded"); done
    out="$repo/artifacts/mutation/${MUTATION_LABEL:-$folder}"
    rm -rf "$out" && mkdir -p "$out"
    echo "== mutating $pattern (report: $out)"
    (cd tests/Vae.ML.Tests && dotnet dotnet-stryker --project Vae.ML.csproj --configuration Release --target-framework net10.0 \
        "${mutate[@]}" --concurrency "$concurrency" --test-case-filter "$filter" --reporter json --reporter html --reporter progress \
        --reporter cleartext --output "$out" --skip-version-check --config-file "$work/stryker-config.json" \
        ${MUTATION_ARGS:-}) 2>&1 | tee "$out/stryker.log"
done
