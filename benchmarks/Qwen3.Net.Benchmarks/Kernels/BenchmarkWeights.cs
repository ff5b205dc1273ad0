using System.Runtime.InteropServices;
using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Benchmarks.Kernels;

/// <summary>A BF16 matrix of the real model's shape in native memory, filled with small random values.</summary>
internal sealed unsafe class BenchmarkWeights : IDisposable
{
    private readonly ushort* _data;

    public BenchmarkWeights(int rows, int columns)
    {
        long count = (long)rows * columns;
        _data = (ushort*)NativeMemory.AlignedAlloc((nuint)(count * 2), 64);
        uint state = 2463534242;
        for (long i = 0; i < count; i++)
        {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // A float in ±[0.5, 1) with random mantissa, truncated to its top 16 bits.
            _data[i] = (ushort)(0x3F00 | (state & 0x807F));
        }

        Matrix = new WeightMatrix((byte*)_data, TensorDType.BF16, rows, columns);
    }

    public WeightMatrix Matrix { get; }

    public long Bytes => (long)Matrix.Rows * Matrix.Columns * 2;

    public static float[] Input(int length)
    {
        var random = new Random(1);
        var x = new float[length];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(random.NextDouble() - 0.5);
        }

        return x;
    }

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
