using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// Decode through one quantized matrix of Qwen3-1.7B's FFN (2048→6144, the up/gate shape) against the same matrix in
/// BF16, with 1 token (a decode step) and 4 (a batch of decoding sequences sharing each weight load).
/// GB/s read = <see cref="QuantizedKernelBenchmark.Bytes"/> / time: 25.2 MB for BF16, 13.4 MB Q8_0, 7.1 MB Q4_K, 10.3 MB Q6_K.
/// </summary>
[MemoryDiagnoser]
public class QuantizedMatVecBenchmarks : QuantizedKernelBenchmark
{
    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(1, 4)]
    public int Tokens { get; set; }

    protected override int ThreadCount => Threads;

    protected override int TokenCount => Tokens;

    [Benchmark(Baseline = true)]
    public void Avx512() => Run(KernelPath.Avx512);

    /// <summary>AVX2, with AVX-VNNI where the CPU has it.</summary>
    [Benchmark]
    public void Avx2() => Run(KernelPath.Avx2);
}
