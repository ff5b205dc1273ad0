using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// A few tokens through a BF16 2048→6144 matrix (gate/up of Qwen3-1.7B) on one thread, by the matrix-vector kernel
/// (four tokens share each weight load) and by the prefill kernel (packed panels): a batch of decoding sequences is a
/// few tokens, and where the two cross is <c>PrefillMinTokens</c>.
/// </summary>
public class BatchedDecodeBenchmarks
{
    private BenchmarkWeights _weights = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    [Params(1, 2, 4, 8, 12, 16)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _weights = new BenchmarkWeights(6144, 2048);
        _x = BenchmarkWeights.Input(2048 * Tokens);
        _y = new float[6144 * Tokens];
    }

    [GlobalCleanup]
    public void Cleanup() => _weights.Dispose();

    [Benchmark(Baseline = true)]
    public void MatrixVector() => MatMul.RowsOnOneThread(_weights.Matrix, _x, _y, Tokens, KernelPaths.Default, matrixVector: true);

    [Benchmark]
    public void Prefill() => MatMul.RowsOnOneThread(_weights.Matrix, _x, _y, Tokens, KernelPaths.Default, matrixVector: false);
}
