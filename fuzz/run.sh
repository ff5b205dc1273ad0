#!/usr/bin/env bash
# Runs one AFL++ campaign: fuzz/run.sh TARGET [seconds, default 600]. Run fuzz/setup.sh first.
# Findings go to fuzz/findings/TARGET/default/{crashes,hangs}; a second run of the same target resumes it.
# Reproduce one finding without AFL: dotnet fuzz/build/Qwen3.Net.Fuzz.dll TARGET < FILE
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [seconds]}
seconds=${2:-600}
[ -d "corpus/$target" ] || { echo "no corpus/$target: targets are $(ls corpus | tr '\n' ' ')"; exit 2; }
[ -f build/Qwen3.Net.Fuzz.dll ] || { echo "run fuzz/setup.sh first"; exit 2; }

# A dictionary of the target's keywords, where there is one, lets AFL++ splice in tokens that coverage alone finds slowly.
dict=()
[ -f "dict/$target.dict" ] && dict=(-x "dict/$target.dict")

mkdir -p findings
work=/dev/shm/qwen3net-fuzz-$$
[ -d /dev/shm ] || work=${TMPDIR:-/tmp}/qwen3net-fuzz-$$
trap 'rm -rf "$work"' EXIT

# A hang is an input that uses more than 1 s of CPU: the driver's watchdog ends the child then, and AFL records a crash
# whose reproduction says "hang". AFL's own wall-clock -t 10000 is only a backstop that leaves room for restarting the
# child (a .NET start and, for some targets, loading the real tokenizer) on a loaded machine. The fork server is a
# .NET process: AFL's binary checks do not apply, and its start-up needs more than the default wait.
# The GC heap limit turns runaway allocation into an OutOfMemoryException (a crash) instead of a swapping machine.
# nice -n 15 and no CPU pinning: the machine is shared.
AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
AFL_NO_UI=1 AFL_AUTORESUME=1 AFL_FORKSRV_INIT_TMOUT=60000 \
DOTNET_GCHeapHardLimit=0x40000000 QWEN3NET_FUZZ_WORK="$work" \
  nice -n 15 afl-fuzz -V "$seconds" -t 10000 -m none "${dict[@]}" -i "corpus/$target" -o "findings/$target" \
    -- dotnet build/Qwen3.Net.Fuzz.dll "$target" > "findings/$target.log" 2>&1 || true

stats=findings/$target/default/fuzzer_stats
[ -f "$stats" ] || { tail -30 "findings/$target.log"; exit 1; }
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg)' "$stats"
