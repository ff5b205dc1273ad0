using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// A few tokens through a BF16 matrix of Qwen3-1.7B (gate/up: 2048 columns → 6144 rows; down: 6144 → 2048) on one thread, by the matrix-vector kernel
/// (the tokens share each weight load) and by the prefill kernel (packed panels): a batch of decoding sequences is a
/// few tokens, and where the two cross is <c>BatchedMaxTokens</c>.
/// </summary>
public class BatchedDecodeBenchmarks
{
    private BenchmarkWeights _weights = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    [Params(1, 2, 3, 4, 8, 12, 16)]
    public int Tokens { get; set; }

    /// <summary>The input width: at 6144 four tokens' inputs no longer fit in L1, which is what the down projection sees.</summary>
    [Params(2048, 6144)]
    public int Columns { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int rows = 2048 * 6144 / Columns;
        _weights = new BenchmarkWeights(rows, Columns);
        _x = BenchmarkWeights.Input(Columns * Tokens);
        _y = new float[rows * Tokens];
    }

    [GlobalCleanup]
    public void Cleanup() => _weights.Dispose();

    [Benchmark(Baseline = true)]
    public void MatrixVector() => MatMul.RowsOnOneThread(_weights.Matrix, _x, _y, Tokens, KernelPaths.Default, matrixVector: true);

    [Benchmark]
    public void Prefill() => MatMul.RowsOnOneThread(_weights.Matrix, _x, _y, Tokens, KernelPaths.Default, matrixVector: false);
}
