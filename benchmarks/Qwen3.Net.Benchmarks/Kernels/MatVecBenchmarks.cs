using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// Decode: one token through a BF16 matrix of Qwen3-1.7B. Memory-bound; GB/s = rows · columns · 2 bytes / time.
/// Shapes are "columns→rows" (input→output features): q/up/gate, down, lm_head.
/// </summary>
[MemoryDiagnoser]
public class MatVecBenchmarks
{
    private BenchmarkWeights _weights = null!;
    private WorkerPool _pool = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    [Params("2048→6144", "6144→2048", "2048→151936")]
    public string Shape { get; set; } = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string[] parts = Shape.Split('→');
        int columns = int.Parse(parts[0]);
        int rows = int.Parse(parts[1]);
        _weights = new BenchmarkWeights(rows, columns);
        _pool = new WorkerPool(Threads);
        _x = BenchmarkWeights.Input(columns);
        _y = new float[rows];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _weights.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Portable() => MatMul.Multiply(_pool, _weights.Matrix, _x, _y, 1, KernelPath.Portable);

    [Benchmark]
    public void Avx2() => MatMul.Multiply(_pool, _weights.Matrix, _x, _y, 1, KernelPath.Avx2);

    [Benchmark]
    public void Avx512() => MatMul.Multiply(_pool, _weights.Matrix, _x, _y, 1, KernelPath.Avx512);
}
