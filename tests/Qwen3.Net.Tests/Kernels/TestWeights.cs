using System.Runtime.InteropServices;
using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Kernels;

/// <summary>A random weight matrix in a pinned buffer, as the memory map would hold it.</summary>
internal sealed unsafe class TestWeights
{
    private readonly byte[] _bytes;

    public TestWeights(TensorDType type, int rows, int columns, int seed)
    {
        var random = new Random(seed);
        int size = type == TensorDType.F32 ? 4 : 2;
        _bytes = GC.AllocateArray<byte>(Math.Max(1, rows * columns * size), pinned: true);
        Span<byte> bytes = _bytes;
        for (int i = 0; i < rows * columns; i++)
        {
            float value = (float)(random.NextDouble() * 2 - 1);
            switch (type)
            {
                case TensorDType.F32:
                    MemoryMarshal.Write(bytes[(i * 4)..], value);
                    break;
                case TensorDType.F16:
                    MemoryMarshal.Write(bytes[(i * 2)..], (Half)value);
                    break;
                default:
                    MemoryMarshal.Write(bytes[(i * 2)..], (ushort)(BitConverter.SingleToInt32Bits(value) >> 16));
                    break;
            }
        }

        fixed (byte* p = _bytes)
        {
            Matrix = new WeightMatrix(p, type, rows, columns);
        }
    }

    /// <summary>Valid while this object is alive (the buffer is on the pinned heap).</summary>
    public WeightMatrix Matrix { get; }

    public static float[] RandomVector(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }

    /// <summary>
    /// Both sides are float32 sums of the same products in different orders; each rounding is ≤ 2⁻²⁴ of a partial sum,
    /// so the difference is a small multiple of ε·Σ|w·x| (≈ √K·ε in practice, K·ε at worst; 1e-5 covers K ≤ 1000
    /// with room to spare at the √K rate). The absolute 1e-6 covers sums that cancel to nearly zero.
    /// </summary>
    public static void ShouldMatch(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, ReadOnlySpan<float> magnitude, string because)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            float tolerance = 1e-5f * magnitude[i] + 1e-6f;
            if (!(MathF.Abs(actual[i] - expected[i]) <= tolerance))
            {
                Assert.Fail($"{because}: element {i} is {actual[i]}, expected {expected[i]} ± {tolerance}");
            }
        }
    }

    /// <summary>Σ_c |W[r, c] · x[t, c]| for each output: the scale of the rounding error of y[t, r].</summary>
    public float[] Magnitudes(ReadOnlySpan<float> x, int tokens)
    {
        WeightMatrix w = Matrix;
        var result = new float[tokens * w.Rows];
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < w.Rows; r++)
            {
                float sum = 0;
                for (int c = 0; c < w.Columns; c++)
                {
                    sum += MathF.Abs(w.At(r, c) * x[t * w.Columns + c]);
                }

                result[t * w.Rows + r] = sum;
            }
        }

        return result;
    }
}
