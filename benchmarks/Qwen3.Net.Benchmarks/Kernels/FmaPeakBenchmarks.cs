using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;
using Qwen3.Net.Benchmarks.Probes;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// The ceiling for prefill, with the loops of <see cref="FmaPeakProbe"/> (register-resident FMA chains, no memory
/// traffic), one thread. GFLOP/s = the returned FLOP count / time.
/// </summary>
public class FmaPeakBenchmarks
{
    public const long Iterations = 1_000_000;

    [Benchmark(Baseline = true)]
    public double Fma256() => FmaPeakProbe.Run<Width256, Vector256<float>>(Iterations);

    [Benchmark]
    public double Fma512() => FmaPeakProbe.Run<Width512, Vector512<float>>(Iterations);
}
