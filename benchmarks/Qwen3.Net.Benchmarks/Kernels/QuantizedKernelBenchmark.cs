using System.Buffers.Binary;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>
/// What the quantized kernel benchmarks share: one 2048→6144 matrix of Qwen3-1.7B's FFN (the up/gate shape) in
/// <see cref="Format"/> (BF16 through <see cref="MatMul"/>, or a block format through <see cref="QuantizedMatMul"/>),
/// the same input row for every token, and a pool of the derived class's thread count.
/// </summary>
public abstract class QuantizedKernelBenchmark
{
    private const int Rows = 6144, Columns = 2048;

    private BenchmarkWeights? _bf16;
    private QuantizedBenchmarkWeights? _quantized;
    private WorkerPool _pool = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    [Params("BF16", "Q8_0", "Q4_K", "Q6_K")]
    public string Format { get; set; } = "";

    /// <summary>Bytes of weights one product reads.</summary>
    public long Bytes => _quantized?.Matrix.ByteLength ?? _bf16!.Bytes;

    protected abstract int ThreadCount { get; }

    protected abstract int TokenCount { get; }

    [GlobalSetup]
    public void Setup()
    {
        if (Format == "BF16")
        {
            _bf16 = new BenchmarkWeights(Rows, Columns);
        }
        else
        {
            _quantized = new QuantizedBenchmarkWeights(Enum.Parse<GgmlType>(Format), Rows, Columns);
        }

        _pool = new WorkerPool(ThreadCount);
        _x = new float[TokenCount * Columns];
        for (int t = 0; t < TokenCount; t++)
        {
            BenchmarkWeights.Input(Columns).CopyTo(_x, t * Columns);
        }

        _y = new float[TokenCount * Rows];
        Console.WriteLine($"// {Format}: {Bytes / 1e6:F2} MB of weights per product");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _bf16?.Dispose();
        _quantized?.Dispose();
    }

    private protected void Run(KernelPath path)
    {
        if (_quantized is not null)
        {
            QuantizedMatMul.Multiply(_pool, _quantized.Matrix, _x, _y, TokenCount, path);
        }
        else
        {
            MatMul.Multiply(_pool, _bf16!.Matrix, _x, _y, TokenCount, path);
        }
    }
}

/// <summary>A quantized matrix in native memory: random quants and scales, f16 scales small and finite.</summary>
internal sealed unsafe class QuantizedBenchmarkWeights : IDisposable
{
    private readonly byte* _data;

    public QuantizedBenchmarkWeights(GgmlType type, int rows, int columns)
    {
        long bytes = rows * GgmlTypes.RowBytes(type, columns);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var span = new Span<byte>(_data, checked((int)bytes));
        new Random(2).NextBytes(span);
        int blockBytes = GgmlTypes.BytesPerBlock(type);
        int[] halves = type switch
        {
            GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q6_K => [208],
            _ => [0],
        };
        for (int b = 0; b < bytes; b += blockBytes)
        {
            foreach (int offset in halves)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(span[(b + offset)..], BitConverter.HalfToUInt16Bits((Half)0.01f));
            }
        }

        Matrix = new QuantizedMatrix(_data, type, rows, columns);
    }

    public QuantizedMatrix Matrix { get; }

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
