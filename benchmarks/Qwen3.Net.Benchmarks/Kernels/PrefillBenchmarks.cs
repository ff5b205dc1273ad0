using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// Prefill: a block of 128 or 512 tokens (the forward pass's largest block) through the 2048→6144 BF16 matrix (gate/up
/// of Qwen3-1.7B). Compute-bound; GFLOP/s = 2 · 6144 · 2048 · tokens / time.
/// </summary>
[MemoryDiagnoser]
public class PrefillBenchmarks
{
    private const int Columns = 2048;
    private const int Rows = 6144;

    private BenchmarkWeights _weights = null!;
    private WorkerPool _pool = null!;
    private AlignedBuffer _x = null!; // cache-line aligned, as the forward pass's activations are
    private float[] _y = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(128, 512)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _weights = new BenchmarkWeights(Rows, Columns);
        _pool = new WorkerPool(Threads);
        _x = new AlignedBuffer(Tokens * Columns);
        BenchmarkWeights.Input(Tokens * Columns).CopyTo(_x.AsSpan(0, Tokens * Columns));
        _y = new float[Tokens * Rows];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _weights.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Portable() => MatMul.Multiply(_pool, _weights.Matrix, _x.AsSpan(0, Tokens * Columns), _y, Tokens, KernelPath.Portable);

    [Benchmark]
    public void Avx2() => MatMul.Multiply(_pool, _weights.Matrix, _x.AsSpan(0, Tokens * Columns), _y, Tokens, KernelPath.Avx2);

    [Benchmark]
    public void Avx512() => MatMul.Multiply(_pool, _weights.Matrix, _x.AsSpan(0, Tokens * Columns), _y, Tokens, KernelPath.Avx512);
}
