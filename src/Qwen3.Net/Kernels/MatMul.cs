using System.Numerics.Tensors;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

/// <summary>
/// y[t, r] = Σ_c W[r, c] · x[t, c] for every token t: the linear layers of the model (no biases in Qwen3).
/// W is a weight matrix in the memory map; x and y are float32, token-major.
/// </summary>
internal static unsafe class MatMul
{
    public static void Multiply(WorkerPool pool, in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        CheckShapes(w, x, y, tokens);
        fixed (float* px = x)
        fixed (float* py = y)
        {
            var job = new RowsJob(w, px, py, tokens);
            pool.Run(ref job, w.Rows);
        }
    }

    /// <summary>The definition, one multiply-add at a time in float32: the reference every fast path is tested against.</summary>
    public static void MultiplyScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        CheckShapes(w, x, y, tokens);
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < w.Rows; r++)
            {
                float sum = 0;
                for (int c = 0; c < w.Columns; c++)
                {
                    sum += w.At(r, c) * x[t * w.Columns + c];
                }

                y[t * w.Rows + r] = sum;
            }
        }
    }

    private static void CheckShapes(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (x.Length < (long)tokens * w.Columns || y.Length < (long)tokens * w.Rows)
        {
            throw new ArgumentException($"MatMul of [{w.Rows}, {w.Columns}] over {tokens} tokens needs x ≥ {tokens * w.Columns} and y ≥ {tokens * w.Rows} floats; got {x.Length} and {y.Length}.");
        }
    }

    private readonly struct RowsJob(WeightMatrix w, float* x, float* y, int tokens) : IRangeJob
    {
        public void Execute(int start, int end)
        {
            Span<float> row = w.Type == TensorDType.F32 ? default : new float[w.Columns];
            for (int r = start; r < end; r++)
            {
                ReadOnlySpan<float> weights;
                if (w.Type == TensorDType.F32)
                {
                    weights = new ReadOnlySpan<float>(w.Row(r), w.Columns);
                }
                else
                {
                    w.ReadRow(r, row);
                    weights = row;
                }

                for (int t = 0; t < tokens; t++)
                {
                    y[(long)t * w.Rows + r] = TensorPrimitives.Dot(weights, new ReadOnlySpan<float>(x + (long)t * w.Columns, w.Columns));
                }
            }
        }
    }
}
