#!/usr/bin/env bash
# Installs what fuzzing needs (AFL++ from Debian, SharpFuzz's instrumentation tool from the local tool manifest),
# publishes the fuzz driver to fuzz/build/ and instruments its copy of Qwen3.Net.dll for AFL++.
# Run once, and again after changing the library: fuzz/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++
fi
dotnet tool restore

rm -rf build
nice -n 10 dotnet publish Qwen3.Net.Fuzz -c Release -o build --nologo -v quiet
# Only our assemblies are instrumented: the coverage AFL++ steers by is that of our parsers, not of the BCL's JSON reader.
dotnet tool run sharpfuzz build/Qwen3.Net.dll
dotnet tool run sharpfuzz build/Qwen3.Net.Server.dll
echo "ready: fuzz/run.sh TARGET [seconds]"
