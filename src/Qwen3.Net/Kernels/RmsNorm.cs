using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Qwen3.Net.Kernels;

/// <summary>y = weight · x / √(mean(x²) + ε), over each row of <c>size</c> elements (Qwen3 has no "1 + weight").</summary>
internal static unsafe class RmsNorm
{
    /// <summary>The rows shared out over <paramref name="pool"/> when there are enough of them (see <see cref="WorkerPool.WorthSharing"/>).</summary>
    public static void Apply(WorkerPool pool, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float epsilon, Span<float> y)
    {
        if (weight.Length == 0 || x.Length % weight.Length != 0 || y.Length < x.Length)
        {
            throw new ArgumentException($"RMSNorm of {x.Length} values into {y.Length} does not make whole rows of {weight.Length}.");
        }

        fixed (float* xp = x)
        fixed (float* wp = weight)
        fixed (float* yp = y)
        {
            var job = new Rows(xp, wp, weight.Length, epsilon, yp);
            pool.RunPass(ref job, x.Length / weight.Length, x.Length);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
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

    private readonly struct Rows(float* x, float* weight, int size, float epsilon, float* y) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            long offset = (long)start * size;
            int length = (end - start) * size;
            Apply(new ReadOnlySpan<float>(x + offset, length), new ReadOnlySpan<float>(weight, size), epsilon, new Span<float>(y + offset, length));
        }
    }
}
