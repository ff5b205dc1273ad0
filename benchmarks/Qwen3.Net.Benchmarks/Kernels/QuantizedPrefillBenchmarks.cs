using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// A 128-token prompt through one 2048→6144 matrix of Qwen3-1.7B on one thread, AVX-512: the quantized int8 kernels
/// (up to four tokens per weight load, 64 tokens' activations kept in cache per block of rows) against the BF16
/// prefill tile. GFLOP/s = 2 · 6144 · 2048 · 128 / time.
/// </summary>
[MemoryDiagnoser]
public class QuantizedPrefillBenchmarks
{
    private const int Rows = 6144, Columns = 2048, Tokens = 128;

    private BenchmarkWeights? _bf16;
    private QuantizedBenchmarkWeights? _quantized;
    private WorkerPool _pool = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    [Params("BF16", "Q8_0", "Q4_K", "Q6_K")]
    public string Format { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        if (Format == "BF16")
        {
            _bf16 = new BenchmarkWeights(Rows, Columns);
        }
        else
        {
            _quantized = new QuantizedBenchmarkWeights(Enum.Parse<QuantizedType>(Format), Rows, Columns);
        }

        _pool = new WorkerPool(1);
        _x = new float[Tokens * Columns];
        for (int t = 0; t < Tokens; t++)
        {
            BenchmarkWeights.Input(Columns).CopyTo(_x, t * Columns);
        }

        _y = new float[Tokens * Rows];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _bf16?.Dispose();
        _quantized?.Dispose();
    }

    [Benchmark]
    public void Avx512()
    {
        if (_quantized is not null)
        {
            QuantizedMatMul.Multiply(_pool, _quantized.Matrix, _x, _y, Tokens, KernelPath.Avx512);
        }
        else
        {
            MatMul.Multiply(_pool, _bf16!.Matrix, _x, _y, Tokens, KernelPath.Avx512);
        }
    }
}
