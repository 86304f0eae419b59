#!/usr/bin/env bash
# Consumers outside the repository (part of .ci/run): packs Vae.ML and Vae.ML.Datasets into a local feed, then creates
# brand-new apps in a temporary folder outside the repository, restored only from that feed and the normal package
# source, and checks them:
#   1. cpu-app: Vae.ML + Vae.ML.Datasets + the CPU backend; trains one epoch on 3,000 MNIST rows, reads Latent,
#      mlContext.Model.Save/Load, ExportOnnx. Run with `dotnet run`, then `dotnet publish -c Release -r linux-x64` and
#      the published binary run directly (TorchSharp's Linux native fix must work from a publish folder); both runs
#      must write identical outputs.
#   2. serving-app: Microsoft.ML + Microsoft.ML.OnnxTransformer + ONNX Runtime only (no TorchSharp, libtorch or
#      Vae.ML, checked); scores app 1's rows from its ONNX file with ApplyOnnxModel and compares with app 1's output.
#   3. compat-app: Vae.ML with Microsoft.ML.TorchSharp 0.23.1 and TorchVision 0.107.0 in one app (`dotnet run`):
#      Vae.ML trains, TorchVision runs, and Microsoft.ML.TorchSharp's TorchSharp calls resolve but for the known gap
#      that the README names.
#   4. source-app: a ProjectReference to this repository's src/Vae.ML, built with `dotnet build -o DIR` and run;
#      the build's ML.NET publicizer must not end up in DIR.
# Prints app 1 and app 2's published sizes. MNIST comes from ~/.cache/vae-ml/mnist (or $VAE_ML_DATA), fetched if missing.
#   tools/consumers/run.sh            (VAE_ML_CONSUMERS_KEEP=1 keeps the temporary folder and says where it is)
set -euo pipefail

# The ONNX steps (ExportOnnx in app 1, the whole serving app): the one switch for them, on or off.
onnx_export=on

repo="$(cd "$(dirname "$0")/../.." && pwd)"
templates="$repo/tools/consumers"
log() { printf '\n== consumers: %s\n' "$*"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/vae-ml-consumers.XXXXXX")"
case "$work/" in "$repo"/*) echo "the consumers' folder must be outside the repository: $work" >&2; exit 1 ;; esac
# A version no earlier run used: NuGet's global packages folder never hands back an older pack under the same number.
base_version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n 1)"
version="${base_version}-consumers.$(date -u +%Y%m%d%H%M%S).$$"
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cleanup() {
    rm -rf "$packages/vae.ml/$version" "$packages/vae.ml.datasets/$version"
    if [ "${VAE_ML_CONSUMERS_KEEP:-}" = "1" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

log "pack Vae.ML and Vae.ML.Datasets $version"
for project in src/Vae.ML.Datasets/Vae.ML.Datasets.csproj src/Vae.ML/Vae.ML.csproj; do
    # Built as in the repository (up to date after .ci/run's build), packed with the consumers' version.
    dotnet build "$repo/$project" -c Release -v quiet -nologo
    dotnet pack "$repo/$project" -c Release --no-build -o "$work/feed" -p:Version="$version" -v quiet -nologo
done
ls "$work/feed"
for package in Vae.ML Vae.ML.Datasets; do
    for kind in nupkg snupkg; do
        [ -f "$work/feed/$package.$version.$kind" ] || { echo "missing $package.$version.$kind" >&2; exit 1; }
    done
done

# The apps see nothing of the repository: their own nuget.config (the local feed + the normal source) and empty
# Directory.* files so that no parent folder's build settings apply.
cat >"$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
</configuration>
XML
for file in Directory.Build.props Directory.Build.targets Directory.Packages.props; do echo '<Project />' >"$work/$file"; done
mkdir -p "$work/apps"
cp -r "$templates/cpu-app" "$work/apps/cpu-app"
cp -r "$templates/serving-app" "$work/apps/serving-app"
cp -r "$templates/compat-app" "$work/apps/compat-app"
cp -r "$templates/source-app" "$work/apps/source-app"
sed -i "s#@VAE_ML_REPO@#$repo#g" "$work/apps/source-app/ConsumerSourceApp.csproj"
sed -i "s/@VAE_ML_VERSION@/$version/g" "$work/apps/cpu-app/ConsumerCpuApp.csproj" "$work/apps/compat-app/ConsumerCompatApp.csproj"

log "cpu-app: dotnet run"
(cd "$work/apps/cpu-app" && dotnet run -c Release -p:VaeMlOnnx="$onnx_export" -- "$work/out-run")

log "cpu-app: dotnet publish -c Release -r linux-x64, then the published binary"
(cd "$work/apps/cpu-app" && dotnet publish -c Release -r linux-x64 -p:VaeMlOnnx="$onnx_export" -o "$work/publish/cpu-app" -v quiet -nologo)
"$work/publish/cpu-app/ConsumerCpuApp" "$work/out-publish"
cmp "$work/out-run/scored.json" "$work/out-publish/scored.json" \
    || { echo "the published app's outputs differ from dotnet run's" >&2; exit 1; }
echo "the published binary wrote the same outputs as dotnet run"
cpu_size="$(du -sm "$work/publish/cpu-app" | cut -f1)"

serving_size="-"
if [ "$onnx_export" = "on" ]; then
    log "serving-app: dotnet publish -c Release -r linux-x64, then the published binary"
    (cd "$work/apps/serving-app" && dotnet publish -c Release -r linux-x64 -o "$work/publish/serving-app" -v quiet -nologo)
    if grep -qiE '"(torchsharp|libtorch[^"]*|vae\.ml[^"]*)/' "$work/apps/serving-app/obj/project.assets.json"; then
        echo "the serving app must not depend on TorchSharp, libtorch or Vae.ML:" >&2
        grep -oiE '"(torchsharp|libtorch[^"]*|vae\.ml[^"]*)/[^"]*"' "$work/apps/serving-app/obj/project.assets.json" | sort -u >&2
        exit 1
    fi
    "$work/publish/serving-app/ConsumerServingApp" "$work/out-publish"
    serving_size="$(du -sm "$work/publish/serving-app" | cut -f1)"
else
    echo "serving-app skipped: onnx_export=off in tools/consumers/run.sh"
fi

log "compat-app: Vae.ML + Microsoft.ML.TorchSharp + TorchVision (dotnet run)"
(cd "$work/apps/compat-app" && dotnet run -c Release)

log "source-app: ProjectReference to src/Vae.ML, dotnet build -o DIR"
(cd "$work/apps/source-app" && dotnet build -c Release -o "$work/source-out" -v quiet -nologo)
if ls "$work/source-out" | grep -q 'Vae\.ML\.Build\.Publicizer'; then
    echo "the ML.NET publicizer (a build tool) was copied into the app's output:" >&2
    ls "$work/source-out" | grep 'Vae\.ML\.Build\.Publicizer' >&2
    exit 1
fi
"$work/source-out/ConsumerSourceApp" "$work"

log "published sizes: cpu-app ${cpu_size} MB, serving-app ${serving_size} MB"
