using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// A 128-token prompt through one 2048→6144 matrix of Qwen3-1.7B on one thread: the quantized int8 prompt tile (a
/// panel of 32 rows unpacked once, 2 row vectors × 4 tokens of int32 sums per weight load) against the BF16 prefill
/// tile. GFLOP/s = 2 · 6144 · 2048 · 128 / time.
/// </summary>
[MemoryDiagnoser]
public class QuantizedPrefillBenchmarks : QuantizedKernelBenchmark
{
    protected override int ThreadCount => 1;

    protected override int TokenCount => 128;

    [Benchmark(Baseline = true)]
    public void Avx512() => Run(KernelPath.Avx512);

    /// <summary>AVX2, with AVX-VNNI where the CPU has it.</summary>
    [Benchmark]
    public void Avx2() => Run(KernelPath.Avx2);
}
