using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Qwen3.Net.Kernels;

/// <summary>y = weight · x / √(mean(x²) + ε), over each row of <c>size</c> elements (Qwen3 has no "1 + weight").</summary>
internal static class RmsNorm
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float epsilon, Span<float> y)
    {
        int size = weight.Length;
        for (int offset = 0; offset < x.Length; offset += size)
        {
            ReadOnlySpan<float> row = x.Slice(offset, size);
            float scale = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(row) / size + epsilon);
            Span<float> output = y.Slice(offset, size);
            TensorPrimitives.Multiply(row, scale, output);
            TensorPrimitives.Multiply(output, weight, output);
        }
    }

    public static void ApplyScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float epsilon, Span<float> y)
    {
        int size = weight.Length;
        for (int offset = 0; offset < x.Length; offset += size)
        {
            float sumOfSquares = 0;
            for (int i = 0; i < size; i++)
            {
                sumOfSquares += x[offset + i] * x[offset + i];
            }

            float scale = 1f / MathF.Sqrt(sumOfSquares / size + epsilon);
            for (int i = 0; i < size; i++)
            {
                y[offset + i] = weight[i] * (x[offset + i] * scale);
            }
        }
    }
}
