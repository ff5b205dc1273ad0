using BenchmarkDotNet.Running;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>Entry for <c>dotnet run -c Release --project benchmarks/Qwen3.Net.Benchmarks -- kernels [BenchmarkDotNet args]</c>.</summary>
public static class KernelBenchmarks
{
    public static void Run(string[] args) =>
        BenchmarkSwitcher.FromTypes([typeof(MatVecBenchmarks), typeof(PrefillBenchmarks), typeof(AttentionBenchmarks), typeof(FmaPeakBenchmarks), typeof(BatchedDecodeBenchmarks), typeof(QuantizedMatVecBenchmarks), typeof(QuantizedPrefillBenchmarks)]).Run(args);
}
