using System.Globalization;
using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// Causal grouped-query attention of one Qwen3-1.7B layer (16 query heads, 8 kv heads, head_dim 128) over a KV cache of
/// 2048 positions: a 512-token prompt block at position 0, the last 512-token block of a 2048-token prompt, and one
/// decoded token after 2047. GFLOP/s = 4 · 16 · 128 · Σ_t (positions token t sees) / time.
/// </summary>
[MemoryDiagnoser]
public class AttentionBenchmarks
{
    private const int Heads = 16;
    private const int KvHeads = 8;
    private const int HeadDim = 128;
    private const int Capacity = 2048;

    private WorkerPool _pool = null!;
    private float[] _queries = null!;
    private float[] _keys = null!;
    private float[] _values = null!;
    private float[] _output = null!;
    private float[] _scores = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>"start+tokens": where the block starts and how many new tokens it has.</summary>
    [Params("0+512", "1536+512", "2047+1")]
    public string Block { get; set; } = "0+512";

    private int _start;
    private int _tokens;

    [GlobalSetup]
    public void Setup()
    {
        string[] parts = Block.Split('+');
        _start = int.Parse(parts[0], CultureInfo.InvariantCulture);
        _tokens = int.Parse(parts[1], CultureInfo.InvariantCulture);
        _pool = new WorkerPool(Threads);
        _queries = BenchmarkWeights.Input(_tokens * Heads * HeadDim);
        _keys = BenchmarkWeights.Input(KvHeads * Capacity * HeadDim);
        _values = BenchmarkWeights.Input(KvHeads * Capacity * HeadDim);
        _output = new float[_tokens * Heads * HeadDim];
        _scores = new float[Attention.ScratchLength(Threads, Heads, KvHeads, _start + _tokens)];
    }

    [GlobalCleanup]
    public void Cleanup() => _pool.Dispose();

    [Benchmark]
    public void Portable() => Run(KernelPath.Portable);

    [Benchmark]
    public void Avx2() => Run(KernelPath.Avx2);

    [Benchmark]
    public void Avx512() => Run(KernelPath.Avx512);

    /// <summary>The kernel for a head_dim that is no whole number of vectors: a TensorPrimitives call per row and key.</summary>
    [Benchmark(Baseline = true)]
    public void TensorPrimitivesPerRow() => Run(KernelPath.Scalar);

    private void Run(KernelPath path) =>
        Attention.Compute(_pool, _queries, _keys, _values, Capacity, Heads, KvHeads, HeadDim, _start, _tokens, _output, _scores, path);
}
