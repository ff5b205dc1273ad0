using System.Runtime.CompilerServices;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

/// <summary>
/// y[t, r] = Σ_c W[r, c] · x[t, c] for every token t: the linear layers of the model (no biases in Qwen3).
/// W is a weight matrix in the memory map; x and y are float32, token-major.
/// One token (decoding) streams each weight once, at memory bandwidth; a block of tokens (prefill) keeps a panel of
/// weight rows in cache and reuses it for every token, at FMA throughput.
/// </summary>
/// <remarks>
/// The kernels with loops here and in the other kernel classes are marked AggressiveOptimization: in Tier-0 code they
/// run many times slower, and the first prompt after a load would pay for it. And NoInlining, so each is compiled on its
/// own: inlined into a caller's Tier-1 code, the caller ran out of inlining budget and called the kernel's helpers per
/// step (docs/architecture.md).
/// </remarks>
internal static unsafe partial class MatMul
{
    /// <summary>
    /// Up to this many tokens, plain (F32, F16, BF16) weights go through the matrix-vector kernels, which read each
    /// weight once from memory for all the tokens; from one more, through the prompt tile. Not eight: the scheduler
    /// cuts prompts into 8-token chunks while others decode, and a prompt's results must not depend on its chunks (the
    /// tile sums every token alike), which sending those chunks to the matrix-vector kernels broke (docs/benchmarks.md).
    /// Steps of decoding tokens only may go further (<see cref="DecodeMaxTokens"/>).
    /// </summary>
    internal const int BatchedMaxTokens = 4;

    /// <summary>
    /// Up to this many tokens of a step that only decodes (every sequence in it adds one token, so no prompt chunk, see
    /// <see cref="BatchedMaxTokens"/>), plain weights go through the matrix-vector kernels, in passes of four over each
    /// row pair's block. On the AVX-512 path that is eight (five to seven decoding tokens read the weights faster than
    /// through the tile on the Intel Xeon and on AMD Zen 4, eight level), except on AMD Zen 5 (family 1Ah), where it is
    /// five (five faster, six level, seven and eight slower; docs/benchmarks.md).
    /// </summary>
    internal static int DecodeMaxTokens(KernelPath path) => path == KernelPath.Avx512 ? DecodeMaxTokensAvx512 : BatchedMaxTokens;

    private static readonly int DecodeMaxTokensAvx512 = CpuIdentity.AmdFamily < 0x1A ? 8 : 5;

    /// <summary>Rows per parallel work item: the row panel of the path's prefill kernel, so only a matrix's last panel is short.</summary>
    private static int BlockRows(KernelPath path) => PromptPanelRows(path);

    /// <summary>y = W·x; <paramref name="decoding"/>: the tokens are a step's decoding tokens only, one per sequence (<see cref="DecodeMaxTokens"/>).</summary>
    public static void Multiply(WorkerPool pool, in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, bool decoding = false) =>
        Multiply(pool, w, x, y, tokens, KernelPaths.Default, KernelPaths.Quantized, decoding);

    /// <summary>
    /// y = W·x on <paramref name="path"/>, or for a quantized matrix on <paramref name="quantizedPath"/> where given (the
    /// engine's calls pass <see cref="KernelPaths.Quantized"/>, so QWEN3NET_QUANTIZED_KERNELS reaches the forward pass).
    /// </summary>
    internal static void Multiply(WorkerPool pool, in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, KernelPath path, KernelPath? quantizedPath = null, bool decoding = false)
    {
        if (w.IsQuantized)
        {
            Quantized.QuantizedMatMul.Multiply(pool, w.Quantized, x, y, tokens, quantizedPath ?? path);
            return;
        }

        CheckShapes(w, x, y, tokens);
        fixed (float* px = x)
        fixed (float* py = y)
        {
            var job = new RowSplitJob<WeightMatrix, Product>(Product.For(px, tokens, path, decoding, w.Columns, w), tokens, BlockRows(path), w, py);
            pool.Run(ref job, job.Blocks);
        }
    }

    /// <summary>
    /// Three products of the same input in one parallel sweep (q, k and v from the normalized hidden state):
    /// one dispatch instead of three, and x is read while it is still in cache.
    /// </summary>
    public static void Multiply(
        WorkerPool pool, ReadOnlySpan<float> x, int tokens,
        in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2, bool decoding = false) =>
        Multiply(pool, x, tokens, w0, y0, w1, y1, w2, y2, KernelPaths.Default, KernelPaths.Quantized, decoding);

    internal static void Multiply(
        WorkerPool pool, ReadOnlySpan<float> x, int tokens,
        in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2, KernelPath path, KernelPath? quantizedPath = null,
        bool decoding = false)
    {
        if (w0.IsQuantized && w1.IsQuantized && w2.IsQuantized)
        {
            Quantized.QuantizedMatMul.Multiply(pool, x, tokens, w0.Quantized, y0, w1.Quantized, y1, w2.Quantized, y2, quantizedPath ?? path);
            return;
        }

        if (w0.IsQuantized || w1.IsQuantized || w2.IsQuantized)
        {
            Multiply(pool, w0, x, y0, tokens, path, quantizedPath, decoding);
            Multiply(pool, w1, x, y1, tokens, path, quantizedPath, decoding);
            Multiply(pool, w2, x, y2, tokens, path, quantizedPath, decoding);
            return;
        }

        if (w1.Columns != w0.Columns || w2.Columns != w0.Columns)
        {
            throw new ArgumentException($"fused products of one x need matrices of one width; got {w0.Columns}, {w1.Columns} and {w2.Columns} columns.");
        }

        CheckShapes(w0, x, y0, tokens);
        CheckShapes(w1, x, y1, tokens);
        CheckShapes(w2, x, y2, tokens);
        fixed (float* px = x)
        fixed (float* p0 = y0)
        fixed (float* p1 = y1)
        fixed (float* p2 = y2)
        {
            var product = Product.For(px, tokens, path, decoding, w0.Columns, w0, w1, w2);
            var job = new RowSplitJob<WeightMatrix, Product>(product, tokens, BlockRows(path), w0, p0, w1, p1, w2, p2);
            pool.Run(ref job, job.Blocks);
        }
    }

    /// <summary>
    /// y = silu(G·x) ⊙ (U·x), the gated MLP activation, applied to each block of rows as soon as both products are
    /// done, so the activation costs no separate sweep. <paramref name="upScratch"/> receives U·x.
    /// </summary>
    public static void MultiplySwiGlu(
        WorkerPool pool, in WeightMatrix gate, in WeightMatrix up, ReadOnlySpan<float> x, Span<float> y, Span<float> upScratch, int tokens, bool decoding = false) =>
        MultiplySwiGlu(pool, gate, up, x, y, upScratch, tokens, KernelPaths.Default, KernelPaths.Quantized, decoding);

    internal static void MultiplySwiGlu(
        WorkerPool pool, in WeightMatrix gate, in WeightMatrix up, ReadOnlySpan<float> x, Span<float> y, Span<float> upScratch, int tokens, KernelPath path,
        KernelPath? quantizedPath = null, bool decoding = false)
    {
        if (gate.IsQuantized && up.IsQuantized)
        {
            Quantized.QuantizedMatMul.MultiplySwiGlu(pool, gate.Quantized, up.Quantized, x, y, upScratch, tokens, quantizedPath ?? path);
            return;
        }

        if (gate.IsQuantized || up.IsQuantized)
        {
            Multiply(pool, gate, x, y, tokens, path, quantizedPath, decoding);
            Multiply(pool, up, x, upScratch, tokens, path, quantizedPath, decoding);
            for (int t = 0; t < tokens; t++)
            {
                Kernels.SwiGlu.Apply(y.Slice(t * gate.Rows, gate.Rows), upScratch.Slice(t * gate.Rows, gate.Rows));
            }

            return;
        }

        if (gate.Rows != up.Rows || gate.Columns != up.Columns)
        {
            throw new ArgumentException($"gate [{gate.Rows}, {gate.Columns}] and up [{up.Rows}, {up.Columns}] projections must have the same shape.");
        }

        CheckShapes(gate, x, y, tokens);
        CheckShapes(up, x, upScratch, tokens);
        fixed (float* px = x)
        fixed (float* py = y)
        fixed (float* pu = upScratch)
        {
            var product = Product.For(px, tokens, path, decoding, gate.Columns, gate, up);
            var job = new RowSplitJob<WeightMatrix, Product>(product, tokens, BlockRows(path), gate, py, up, pu) { SwiGlu = true };
            pool.Run(ref job, job.BlockCount(gate));
        }
    }

    /// <summary>The definition, one multiply-add at a time in float32: the reference every fast path is tested against.</summary>
    public static void MultiplyScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (w.IsQuantized)
        {
            Quantized.QuantizedMatMul.MultiplyScalar(w.Quantized, x, y, tokens);
            return;
        }

        CheckShapes(w, x, y, tokens);
        fixed (float* px = x)
        fixed (float* py = y)
        {
            RowsScalar(w, px, py, tokens, 0, w.Rows);
        }
    }

    private static void RowsScalar(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        for (int t = 0; t < tokens; t++)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                float sum = 0;
                for (int c = 0; c < w.Columns; c++)
                {
                    sum += w.At(r, c) * x[(long)t * w.Columns + c];
                }

                y[(long)t * w.Rows + r] = sum;
            }
        }
    }

    /// <summary>
    /// All rows of y = W·x on the calling thread by the matrix-vector kernel or by the prefill kernel, whatever the
    /// token count: for the benchmark that places <see cref="BatchedMaxTokens"/>.
    /// </summary>
    internal static void RowsOnOneThread(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, KernelPath path, bool matrixVector)
    {
        CheckShapes(w, x, y, tokens);
        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (matrixVector)
            {
                bool bf16 = w.Type == TensorDType.BF16;
                ArrangeInput(px, tokens, w.Columns, path, bf16, !bf16, out float* arrangedBf16, out float* arrangedPlain);
                MatVecRows(w, px, bf16 ? arrangedBf16 : arrangedPlain, py, tokens, 0, w.Rows, path);
            }
            else
            {
                PrefillRows(w, px, py, tokens, 0, w.Rows, path);
            }
        }
    }

    private static void CheckShapes(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (tokens < 1 || x.Length < (long)tokens * w.Columns || y.Length < (long)tokens * w.Rows)
        {
            throw new ArgumentException($"MatMul of [{w.Rows}, {w.Columns}] over {tokens} tokens needs x ≥ {tokens * w.Columns} and y ≥ {tokens * w.Rows} floats; got {x.Length} and {y.Length}.");
        }
    }

    /// <summary>
    /// Whether <see cref="MatVecRows"/> takes <paramref name="tokens"/> tokens of <paramref name="w"/> on
    /// <paramref name="path"/>. Kept panels go through the prompt tile from one token on: one stream decodes about as
    /// fast as through the matrix-vector kernel, several much faster, and every token's sums are then the same whatever
    /// it is batched with (docs/benchmarks.md).
    /// </summary>
    private static bool IsMatrixVector(in WeightMatrix w, int tokens, KernelPath path, bool decoding) =>
        path != KernelPath.Scalar && tokens <= (decoding ? DecodeMaxTokens(path) : BatchedMaxTokens) && !HasPanels(w, path);

    /// <summary>Whether the prompt tile on <paramref name="path"/> reads <paramref name="w"/> from kept panels.</summary>
    private static bool HasPanels(in WeightMatrix w, KernelPath path) =>
        w.Panels != null && path != KernelPath.Scalar && w.PanelRows == PromptPanelRows(path);

    /// <summary>
    /// The rows of a <see cref="RowSplitJob{TMatrix, TProduct}"/> over x; for the matrix-vector kernels also x in the
    /// decode layout for BF16 rows and for the other plain types (<see cref="ArrangeInput"/>).
    /// </summary>
    private readonly struct Product(float* x, float* arrangedBf16, float* arrangedPlain, int tokens, KernelPath path, bool decoding) : IRowProduct<WeightMatrix>
    {
        public static int RowCount(in WeightMatrix w) => w.Rows;

        /// <summary>A product over <paramref name="x"/> for <paramref name="matrices"/>, arranging x on this thread where the matrix-vector kernels will read it.</summary>
        public static Product For(float* x, int tokens, KernelPath path, bool decoding, int columns, params ReadOnlySpan<WeightMatrix> matrices)
        {
            bool bf16 = false, plain = false;
            foreach (ref readonly WeightMatrix w in matrices)
            {
                if (IsMatrixVector(w, tokens, path, decoding))
                {
                    bf16 |= w.Type == TensorDType.BF16;
                    plain |= w.Type != TensorDType.BF16;
                }
            }

            if (!bf16 && !plain)
            {
                return new Product(x, null, null, tokens, path, decoding);
            }

            ArrangeInput(x, tokens, columns, path, bf16, plain, out float* arrangedBf16, out float* arrangedPlain);
            return new Product(x, arrangedBf16, arrangedPlain, tokens, path, decoding);
        }

        public void Rows(in WeightMatrix w, float* y, int rowStart, int rowEnd)
        {
            if (path == KernelPath.Scalar)
            {
                RowsScalar(w, x, y, tokens, rowStart, rowEnd);
            }
            else if (IsMatrixVector(w, tokens, path, decoding))
            {
                MatVecRows(w, x, w.Type == TensorDType.BF16 ? arrangedBf16 : arrangedPlain, y, tokens, rowStart, rowEnd, path);
            }
            else
            {
                PrefillRows(w, x, y, tokens, rowStart, rowEnd, path);
            }
        }

        public void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
        {
            if (path == KernelPath.Scalar)
            {
                Kernels.SwiGlu.ApplyScalar(gate, up);
            }
            else
            {
                Kernels.SwiGlu.Apply(gate, up);
            }
        }
    }
}
