using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// y[t, r] = Σ_c W[r, c] · x[t, c] for a <see cref="QuantizedMatrix"/>, with the calling shapes of <see cref="MatMul"/>:
/// x is quantized once per product to the weights' activation format (Q8_0 or Q8_K, as ggml's vec_dot_type) and each
/// row is an integer dot product per block, scaled in float32. Rows are shared out over the pool in blocks of
/// <see cref="BlockRows"/>; within a block, tokens are taken <see cref="TokenBlock"/> at a time so their activations
/// stay in cache while the block's rows are reread, and up to four tokens share each weight load. Prompts on AVX-512
/// and AVX2 go through unpacked panels of rows instead (QuantizedMatMul.Prefill.cs).
/// </summary>
internal static unsafe partial class QuantizedMatMul
{
    // An explicit static constructor runs before any method of the class, so the kernels, compiled at their first
    // call (AggressiveOptimization), find the class initialized and take FarPrefetchToL2 as a constant; and the
    // loads' constant vectors too (TwoBitQuants, Q3_KLoad), whose types it initializes.
    static QuantizedMatMul()
    {
        RuntimeHelpers.RunClassConstructor(typeof(TwoBitQuants).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(Q3_KLoad).TypeHandle);
    }

    /// <summary>Rows per parallel work item.</summary>
    internal const int BlockRows = 16;

    /// <summary>Tokens whose activations are reused across a block of rows (64 × 8 KiB of quants at 8192 columns).</summary>
    private const int TokenBlock = 64;

    public static void Multiply(WorkerPool pool, in QuantizedMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens) =>
        Multiply(pool, w, x, y, tokens, KernelPaths.Quantized);

    internal static void Multiply(WorkerPool pool, in QuantizedMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, KernelPath path)
    {
        CheckShapes(w, x, y, tokens);
        if (path == KernelPath.Scalar)
        {
            MultiplyScalar(w, x, y, tokens);
            return;
        }

        fixed (float* px = x)
        fixed (float* py = y)
        {
            QuantizedActivations a = Quantize(w, px, tokens, path);
            bool super = QuantizedFormat.ActivationType(w.Type) == GgmlType.Q8_K;
            var job = new RowSplitJob<QuantizedMatrix, Product>(new Product(super ? default : a, super ? a : default, tokens, path), tokens, WorkRows(tokens, path, w), w, py);
            pool.Run(ref job, job.Blocks);
        }
    }

    /// <summary>Three products of the same input in one parallel sweep (q, k and v), each in its own format.</summary>
    public static void Multiply(
        WorkerPool pool, ReadOnlySpan<float> x, int tokens,
        in QuantizedMatrix w0, Span<float> y0, in QuantizedMatrix w1, Span<float> y1, in QuantizedMatrix w2, Span<float> y2) =>
        Multiply(pool, x, tokens, w0, y0, w1, y1, w2, y2, KernelPaths.Quantized);

    internal static void Multiply(
        WorkerPool pool, ReadOnlySpan<float> x, int tokens,
        in QuantizedMatrix w0, Span<float> y0, in QuantizedMatrix w1, Span<float> y1, in QuantizedMatrix w2, Span<float> y2, KernelPath path)
    {
        CheckShapes(w0, x, y0, tokens);
        CheckShapes(w1, x, y1, tokens);
        CheckShapes(w2, x, y2, tokens);
        if (w0.Columns != w1.Columns || w0.Columns != w2.Columns)
        {
            throw new ArgumentException($"fused products need one input width; got {w0.Columns}, {w1.Columns} and {w2.Columns} columns.");
        }

        if (path == KernelPath.Scalar)
        {
            MultiplyScalar(w0, x, y0, tokens);
            MultiplyScalar(w1, x, y1, tokens);
            MultiplyScalar(w2, x, y2, tokens);
            return;
        }

        fixed (float* px = x)
        fixed (float* p0 = y0)
        fixed (float* p1 = y1)
        fixed (float* p2 = y2)
        {
            (QuantizedActivations small, QuantizedActivations super) = QuantizeFor(px, tokens, w0.Columns, w0.Type, w1.Type, w2.Type, path);
            var job = new RowSplitJob<QuantizedMatrix, Product>(new Product(small, super, tokens, path), tokens, WorkRows(tokens, path, w0, w1, w2), w0, p0, w1, p1, w2, p2);
            pool.Run(ref job, job.Blocks);
        }
    }

    /// <summary>y = silu(G·x) ⊙ (U·x), applied to each block of rows as soon as both products are done; <paramref name="upScratch"/> receives U·x.</summary>
    public static void MultiplySwiGlu(
        WorkerPool pool, in QuantizedMatrix gate, in QuantizedMatrix up, ReadOnlySpan<float> x, Span<float> y, Span<float> upScratch, int tokens) =>
        MultiplySwiGlu(pool, gate, up, x, y, upScratch, tokens, KernelPaths.Quantized);

    internal static void MultiplySwiGlu(
        WorkerPool pool, in QuantizedMatrix gate, in QuantizedMatrix up, ReadOnlySpan<float> x, Span<float> y, Span<float> upScratch, int tokens, KernelPath path)
    {
        if (gate.Rows != up.Rows || gate.Columns != up.Columns)
        {
            throw new ArgumentException($"gate [{gate.Rows}, {gate.Columns}] and up [{up.Rows}, {up.Columns}] projections must have the same shape.");
        }

        CheckShapes(gate, x, y, tokens);
        CheckShapes(up, x, upScratch, tokens);
        if (path == KernelPath.Scalar)
        {
            MultiplyScalar(gate, x, y, tokens);
            MultiplyScalar(up, x, upScratch, tokens);
            for (int t = 0; t < tokens; t++)
            {
                SwiGlu.ApplyScalar(y.Slice(t * gate.Rows, gate.Rows), upScratch.Slice(t * gate.Rows, gate.Rows));
            }

            return;
        }

        fixed (float* px = x)
        fixed (float* py = y)
        fixed (float* pu = upScratch)
        {
            (QuantizedActivations small, QuantizedActivations super) = QuantizeFor(px, tokens, gate.Columns, gate.Type, up.Type, gate.Type, path);
            var job = new RowSplitJob<QuantizedMatrix, Product>(new Product(small, super, tokens, path), tokens, WorkRows(tokens, path, gate, up), gate, py, up, pu) { SwiGlu = true };
            pool.Run(ref job, job.BlockCount(gate));
        }
    }

    /// <summary>
    /// The definition: x quantized by <see cref="QuantizedReference"/> into ggml's blocks and each row summed by its
    /// scalar dot product. The reference every fast path is tested against.
    /// </summary>
    public static void MultiplyScalar(in QuantizedMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        CheckShapes(w, x, y, tokens);
        GgmlType actType = QuantizedFormat.ActivationType(w.Type);
        var act = new byte[GgmlTypes.RowBytes(actType, w.Columns)];
        for (int t = 0; t < tokens; t++)
        {
            ReadOnlySpan<float> xt = x.Slice(t * w.Columns, w.Columns);
            if (actType == GgmlType.Q8_0)
            {
                QuantizedReference.QuantizeQ8_0(xt, act);
            }
            else
            {
                QuantizedReference.QuantizeQ8_K(xt, act);
            }

            for (int r = 0; r < w.Rows; r++)
            {
                y[t * w.Rows + r] = QuantizedReference.Dot(w.Type, new ReadOnlySpan<byte>(w.Row(r), (int)w.RowStride), act, w.Columns);
            }
        }
    }

    /// <summary>All rows on the calling thread, with the AVX-VNNI kernels of the AVX2 and AVX-512 paths or not: for tests and benchmarks.</summary>
    internal static void RowsOnOneThread(in QuantizedMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, KernelPath path, bool vnni)
    {
        CheckShapes(w, x, y, tokens);
        if (path == KernelPath.Scalar || (vnni && !UsesVnni(path)))
        {
            throw new ArgumentException($"no {(vnni ? "VNNI " : "")}{path} kernel on this CPU.", nameof(path));
        }

        fixed (float* px = x)
        fixed (float* py = y)
        {
            QuantizedActivations a = Quantize(w, px, tokens, path);
            Rows(w, a, py, tokens, 0, w.Rows, path, vnni);
        }
    }

    private static QuantizedActivations Quantize(in QuantizedMatrix w, float* x, int tokens, KernelPath path) =>
        ActivationQuantizer.Quantize(QuantizedFormat.ActivationType(w.Type), x, tokens, w.Columns, TakesNibbleOrder(w.Type, tokens, path));

    /// <summary>The input in each activation format one of the matrices needs (the other left empty).</summary>
    private static (QuantizedActivations Small, QuantizedActivations Super) QuantizeFor(float* x, int tokens, int columns, GgmlType a, GgmlType b, GgmlType c, KernelPath path)
    {
        bool small = false, super = false, nibbles = false;
        foreach (GgmlType type in (ReadOnlySpan<GgmlType>)[a, b, c])
        {
            small |= QuantizedFormat.ActivationType(type) == GgmlType.Q8_0;
            super |= QuantizedFormat.ActivationType(type) == GgmlType.Q8_K;
            nibbles |= TakesNibbleOrder(type, tokens, path);
        }

        return (small ? ActivationQuantizer.Quantize(GgmlType.Q8_0, x, tokens, columns) : default,
                super ? ActivationQuantizer.Quantize(GgmlType.Q8_K, x, tokens, columns, nibbles) : default);
    }

    /// <summary>
    /// Whether a product of <paramref name="tokens"/> on <paramref name="path"/> sends a <paramref name="type"/> matrix
    /// through the 512-bit Q4_K/Q5_K decode loops (<see cref="SuperDot"/>, <see cref="NibbleDot4"/>), which read
    /// <see cref="QuantizedActivations.NibbleQuants"/>: whenever its tokens go through the matrix-vector kernels.
    /// </summary>
    private static bool TakesNibbleOrder(GgmlType type, int tokens, KernelPath path) =>
        type is GgmlType.Q4_K or GgmlType.Q5_K && path == KernelPath.Avx512 && tokens < PanelMinTokens(type); // K formats are never kept

    private static void CheckShapes(in QuantizedMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        if (tokens < 1 || x.Length < (long)tokens * w.Columns || y.Length < (long)tokens * w.Rows)
        {
            throw new ArgumentException($"MatMul of {w.Type} [{w.Rows}, {w.Columns}] over {tokens} tokens needs x ≥ {(long)tokens * w.Columns} and y ≥ {(long)tokens * w.Rows} floats; got {x.Length} and {y.Length}.");
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> has AVX-VNNI kernels on this CPU: the AVX2 width's, which AVX-512 also takes
    /// for Q8_0, Q4_0 and Q5_0 (decode of 2+ tokens and prompts; DOTNET_EnableAVXVNNI=0 turns them off).
    /// </summary>
    private static bool UsesVnni(KernelPath path) => path is KernelPath.Avx2 or KernelPath.Avx512 && AvxVnni.IsSupported;

    /// <summary>Rows per parallel work item: a panel where one of <paramref name="matrices"/> goes through the panels, or <see cref="BlockRows"/>.</summary>
    private static int WorkRows(int tokens, KernelPath path, params ReadOnlySpan<QuantizedMatrix> matrices)
    {
        foreach (ref readonly QuantizedMatrix w in matrices)
        {
            if (UsesPanels(w, tokens, path))
            {
                return PanelRows;
            }
        }

        return BlockRows;
    }


    private static void Rows(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd, KernelPath path, bool vnni)
    {
        bool panels = UsesPanels(w, tokens, path);
        switch (path)
        {
            case KernelPath.Avx512 when panels && vnni && QuantizedFormat.IsSmallBlock(w.Type):
                // Signed quants biased to unsigned take one vpdpbusd per 32 products at 256 bits, against a sign fix,
                // vpmaddubsw and vpmaddwd at 512 (one thread, 128 tokens × 2048→6144 Q8_0: 20.1 against 30.7 ms).
                PanelRowsOf<Int8Width256<AvxVnniDot>, Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>(w, a, y, tokens, rowStart, rowEnd);
                break;
            case KernelPath.Avx512 when panels:
                PanelRowsOf<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>>(w, a, y, tokens, rowStart, rowEnd);
                break;
            case KernelPath.Avx512 when vnni && QuantizedFormat.IsSmallBlock(w.Type):
                // Signed quants biased to unsigned take one 256-bit vpdpbusd per block and token, against a sign fix,
                // vpmaddubsw and vpmaddwd at 512 bits (docs/benchmarks.md).
                RowsOf<Int8Width256<AvxVnniDot>, Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>(w, a, y, tokens, rowStart, rowEnd);
                break;
            case KernelPath.Avx512:
                RowsOf<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>>(w, a, y, tokens, rowStart, rowEnd);
                break;
            case KernelPath.Avx2 when vnni:
                Avx2Rows<AvxVnniDot>(w, a, y, tokens, rowStart, rowEnd, panels);
                break;
            case KernelPath.Avx2:
                Avx2Rows<Maddubs>(w, a, y, tokens, rowStart, rowEnd, panels);
                break;
            case KernelPath.Portable:
                RowsOf<Int8Width128, Vector128<byte>, Vector128<short>, Vector128<int>, Vector128<float>>(w, a, y, tokens, rowStart, rowEnd);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(path), path, "no quantized kernel for this path");
        }
    }

    private static void Avx2Rows<TMultiply>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd, bool panels)
        where TMultiply : struct, IInt8Multiply256
    {
        if (panels)
        {
            PanelRowsOf<Int8Width256<TMultiply>, Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>(w, a, y, tokens, rowStart, rowEnd);
        }
        else
        {
            RowsOf<Int8Width256<TMultiply>, Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>(w, a, y, tokens, rowStart, rowEnd);
        }
    }

    private static void RowsOf<TW, TB, TS, TI, TF>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
    {
        switch (w.Type)
        {
            case GgmlType.Q8_0: RowLoop<SmallDots<TW, TB, TS, TI, TF, Q8_0Load>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q4_0: RowLoop<SmallDots<TW, TB, TS, TI, TF, Q4_0Load>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q5_0: RowLoop<SmallDots<TW, TB, TS, TI, TF, Q5_0Load>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q4_K: RowLoop<SuperDots<TW, TB, TS, TI, TF, Q4_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q5_K: RowLoop<SuperDots<TW, TB, TS, TI, TF, Q5_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q3_K: RowLoop<SuperDots<TW, TB, TS, TI, TF, Q3_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q2_K: RowLoop<SuperDots<TW, TB, TS, TI, TF, Q2_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            default: RowLoop<SuperDots<TW, TB, TS, TI, TF, Q6_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
        }
    }

    /// <summary>
    /// A row's dot products with four tokens at once, or with two or three, each weight load shared by them, or a run of
    /// rows' (rowStride apart, results to consecutive y) with one token, for <see cref="RowLoop"/>.
    /// </summary>
    private interface IRowDots
    {
        static abstract void Four(byte* row, int columns, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd);

        /// <summary>The <paramref name="count"/> (2 or 3) tokens from <paramref name="token"/>.</summary>
        static abstract void Few(byte* row, int columns, in QuantizedActivations a, int token, int count, float* y, long yStride, byte* prefetchEnd);

        static abstract void One(byte* row, long rowStride, int rows, int columns, in QuantizedActivations a, int token, float* y, byte* prefetchEnd);
    }

    /// <summary>Q8_0, Q4_0 and Q5_0: per token and block the exact integer dot product, scaled and summed in float as the reference does.</summary>
    private readonly struct SmallDots<TW, TB, TS, TI, TF, TLoad> : IRowDots
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISmallBlockLoad
    {
        // Two or three tokens share each weight load too: a second one-token pass over rows in the cache still cost
        // half the first on the Xeon (docs/benchmarks.md).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Four(byte* row, int columns, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd) =>
            SmallDot<TW, TB, TS, TI, TF, TLoad, FourTokens>(row, 0, 1, a, token, columns, y, yStride, prefetchEnd);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Few(byte* row, int columns, in QuantizedActivations a, int token, int count, float* y, long yStride, byte* prefetchEnd)
        {
            if (count == 2)
            {
                SmallDot<TW, TB, TS, TI, TF, TLoad, TwoTokens>(row, 0, 1, a, token, columns, y, yStride, prefetchEnd);
            }
            else
            {
                SmallDot<TW, TB, TS, TI, TF, TLoad, ThreeTokens>(row, 0, 1, a, token, columns, y, yStride, prefetchEnd);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void One(byte* row, long rowStride, int rows, int columns, in QuantizedActivations a, int token, float* y, byte* prefetchEnd) =>
            SmallDot<TW, TB, TS, TI, TF, TLoad, OneToken>(row, rowStride, rows, a, token, columns, y, 0, prefetchEnd);
    }

    /// <summary>
    /// K formats: per super-block the scales are unpacked in registers right before its quants, one integer Σ sc·q·a
    /// per token, and the float term added in the scalar reference's order (see <see cref="SuperDot"/>).
    /// </summary>
    private readonly struct SuperDots<TW, TB, TS, TI, TF, TLoad> : IRowDots
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        // The weights' unpacking, which makes a K-format row compute-bound, is shared by two or three tokens too.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Four(byte* row, int columns, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd) =>
            SuperDot4<TW, TB, TS, TI, TF, TLoad, FourTokens>(row, columns / 256, a, token, y, yStride, prefetchEnd);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Few(byte* row, int columns, in QuantizedActivations a, int token, int count, float* y, long yStride, byte* prefetchEnd)
        {
            if (count == 2)
            {
                SuperDot4<TW, TB, TS, TI, TF, TLoad, TwoTokens>(row, columns / 256, a, token, y, yStride, prefetchEnd);
            }
            else
            {
                SuperDot4<TW, TB, TS, TI, TF, TLoad, ThreeTokens>(row, columns / 256, a, token, y, yStride, prefetchEnd);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void One(byte* row, long rowStride, int rows, int columns, in QuantizedActivations a, int token, float* y, byte* prefetchEnd) =>
            SuperDot<TW, TB, TS, TI, TF, TLoad>(row, rowStride, rows, columns / 256, a, token, y, prefetchEnd);
    }

    /// <summary>Rows [rowStart, rowEnd) of every token, in blocks of rows and tokens, four tokens at a time, then two or three, then one.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void RowLoop<TDots>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TDots : struct, IRowDots
    {
        int columns = w.Columns;
        byte* end = w.Row(rowEnd - 1) + w.RowStride;
        bool interleaved = InterleavedPrefetch;
        for (int r0 = rowStart; r0 < rowEnd; r0 += BlockRows)
        {
            int r1 = Math.Min(rowEnd, r0 + BlockRows);
            for (int t0 = 0; t0 < tokens; t0 += TokenBlock)
            {
                int t1 = Math.Min(tokens, t0 + TokenBlock), fours = t1 - (t1 - t0) % 4;
                bool few = t1 - fours >= 2;
                int ones = few ? t1 : fours;
                for (int r = r0; r < r1; r++)
                {
                    byte* row = w.Row(r);
                    if (!interleaved)
                    {
                        MatMul.PrefetchAhead(row, w.RowStride, end);
                    }

                    for (int t = t0; t < fours; t += 4)
                    {
                        TDots.Four(row, columns, a, t, y + (long)t * w.Rows + r, w.Rows, interleaved ? end : null);
                    }

                    if (few)
                    {
                        TDots.Few(row, columns, a, fours, t1 - fours, y + (long)fours * w.Rows + r, w.Rows, interleaved ? end : null);
                    }
                }

                // The tokens left: one call per token walks the block's rows, so a call's setup is paid once per block,
                // not per row.
                for (int t = ones; t < t1; t++)
                {
                    TDots.One(w.Row(r0), w.RowStride, r1 - r0, columns, a, t, y + (long)t * w.Rows + r0, interleaved ? end : null);
                }
            }
        }
    }

    // Four blocks at a time: their integer sums and (d_w·d_a)·Σq·a per block in one vector, added to a vector of each
    // token's four partial sums, so every y is QuantizedReference.Dot's float operations in its order, whatever the token group.
    // The weights' f16 scales are converted eight at a time right before their blocks: a pass over the row's scales
    // first made one-token Q8_0 decode 20% slower on Zen 5 (docs/benchmarks.md).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SmallDot<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* first, long rowStride, int rows, in QuantizedActivations a, int token, int columns, float* y, long yStride, byte* prefetchEnd)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        TokenGroup g = a.Group(token, TTokens.Count);
        for (int i = 0; i < rows; i++)
        {
            byte* row = first + i * rowStride;
            Vector128<float> p0 = default, p1 = default, p2 = default, p3 = default;
            int b = 0, blocks = columns / 32;

            // The weights by a pointer stepped per block group, so the loads' offsets are constants (no multiply per load).
            byte* w = row;
            for (; b <= blocks - 8; b += 8, w += 8 * TLoad.BlockBytes)
            {
                Vector256<float> scales = Half16.ReadStrided8(w, TLoad.BlockBytes);
                PrefetchLead(w, 4 * TLoad.BlockBytes, prefetchEnd, TTokens.Count == 1);
                FittingSmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(w, b, scales.GetLower(), g, ref p0, ref p1, ref p2, ref p3);
                PrefetchLead(w + 4 * TLoad.BlockBytes, 4 * TLoad.BlockBytes, prefetchEnd, TTokens.Count == 1);
                FittingSmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(w + 4 * TLoad.BlockBytes, b + 4, scales.GetUpper(), g, ref p0, ref p1, ref p2, ref p3);
            }

            if (b < blocks)
            {
                // The up to seven blocks left (no Qwen3 shape has any: its widths are multiples of 256).
                PrefetchLead(w, (blocks - b) * TLoad.BlockBytes, prefetchEnd);
                p0 = SmallTail<TLoad>(p0, row, g.Quants0, g.Scales0, b, blocks);
                if (TTokens.Count > 1)
                {
                    p1 = SmallTail<TLoad>(p1, row, g.Quants1, g.Scales1, b, blocks);
                }

                if (TTokens.Count > 2)
                {
                    p2 = SmallTail<TLoad>(p2, row, g.Quants2, g.Scales2, b, blocks);
                }

                if (TTokens.Count > 3)
                {
                    p3 = SmallTail<TLoad>(p3, row, g.Quants3, g.Scales3, b, blocks);
                }
            }

            StoreCombined<TTokens>(y + i, yStride, p0, p1, p2, p3);
        }
    }

    /// <summary>Each of the <typeparamref name="TTokens"/> tokens' row sum, its partials combined (<see cref="Combine"/>), stored <paramref name="yStride"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreCombined<TTokens>(float* y, long yStride, Vector128<float> p0, Vector128<float> p1, Vector128<float> p2, Vector128<float> p3)
        where TTokens : struct, ITokenCount
    {
        y[0] = Combine(p0);
        if (TTokens.Count > 1)
        {
            y[yStride] = Combine(p1);
        }

        if (TTokens.Count > 2)
        {
            y[2 * yStride] = Combine(p2);
        }

        if (TTokens.Count > 3)
        {
            y[3 * yStride] = Combine(p3);
        }
    }

    /// <summary>Four blocks from <paramref name="b"/> of one to four tokens, <paramref name="scales"/> the weights' block scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* w, int b, Vector128<float> scales, in TokenGroup g, ref Vector128<float> p0, ref Vector128<float> p1, ref Vector128<float> p2, ref Vector128<float> p3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        int i = 32 * b;
        if (TTokens.Count > 1)
        {
            TW.BlockDots4<TLoad, TTokens>(
                w, 0, g.Quants0 + i, g.Quants1 + i, g.Quants2 + i, g.Quants3 + i, g.Offsets0 + b, g.Offsets1 + b, g.Offsets2 + b, g.Offsets3 + b,
                out Vector128<int> d0, out Vector128<int> d1, out Vector128<int> d2, out Vector128<int> d3);
            p0 += Vector128.ConvertToSingle(d0) * (scales * Vector128.Load(g.Scales0 + b));
            p1 += Vector128.ConvertToSingle(d1) * (scales * Vector128.Load(g.Scales1 + b));
            if (TTokens.Count > 2)
            {
                p2 += Vector128.ConvertToSingle(d2) * (scales * Vector128.Load(g.Scales2 + b));
            }

            if (TTokens.Count > 3)
            {
                p3 += Vector128.ConvertToSingle(d3) * (scales * Vector128.Load(g.Scales3 + b));
            }
        }
        else
        {
            p0 += Vector128.ConvertToSingle(TW.BlockDots<TLoad>(w, 0, g.Quants0 + i, g.Offsets0 + b)) * (scales * Vector128.Load(g.Scales0 + b));
        }
    }

    /// <summary>
    /// <see cref="SmallStep"/> inline, or for the portable width, whose steps do not fit the inlining budget twice, a
    /// call to it in a method of its own (the type test folded as this is imported, as in <see cref="SuperDot"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FittingSmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* w, int b, Vector128<float> scales, in TokenGroup g, ref Vector128<float> p0, ref Vector128<float> p1, ref Vector128<float> p2, ref Vector128<float> p3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (typeof(TW) == typeof(Int8Width128))
        {
            SmallStepAlone<TW, TB, TS, TI, TF, TLoad, TTokens>(w, b, scales, g, ref p0, ref p1, ref p2, ref p3);
        }
        else
        {
            SmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(w, b, scales, g, ref p0, ref p1, ref p2, ref p3);
        }
    }

    /// <summary><see cref="SmallStep"/> in a method of its own, for the portable width.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SmallStepAlone<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* w, int b, Vector128<float> scales, in TokenGroup g, ref Vector128<float> p0, ref Vector128<float> p1, ref Vector128<float> p2, ref Vector128<float> p3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount =>
        SmallStep<TW, TB, TS, TI, TF, TLoad, TTokens>(w, b, scales, g, ref p0, ref p1, ref p2, ref p3);

    /// <summary>(p0 + p1) + (p2 + p3): a row's four partial sums combined as <see cref="QuantizedReference.Dot"/> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Combine(Vector128<float> partials) =>
        (partials.ToScalar() + partials.GetElement(1)) + (partials.GetElement(2) + partials.GetElement(3));

    /// <summary>Floats of one partial sum of a prompt tile: <see cref="TileTokens"/> tokens × <see cref="PanelRows"/> rows.</summary>
    private const int TileSums = TileTokens * PanelRows;

    /// <summary>The prompt tile's partial sums of block (or super-block) <paramref name="b"/>: the four follow one another, b's at b mod 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* PartialSums(float* sums, int b) => sums + (b & 3) * TileSums;

    /// <summary>destination[j] = (p0 + p1) + (p2 + p3) of a tile's four partial sums of <paramref name="count"/> rows from <paramref name="sums"/>.</summary>
    private static void CombinePartials(float* sums, int count, float* destination)
    {
        int j = 0;
        for (; j <= count - 4; j += 4)
        {
            ((Vector128.Load(sums + j) + Vector128.Load(sums + TileSums + j)) + (Vector128.Load(sums + 2 * TileSums + j) + Vector128.Load(sums + 3 * TileSums + j))).Store(destination + j);
        }

        for (; j < count; j++)
        {
            destination[j] = (sums[j] + sums[TileSums + j]) + (sums[2 * TileSums + j] + sums[3 * TileSums + j]);
        }
    }

    /// <summary>
    /// <paramref name="partials"/> with the blocks from <paramref name="b"/> to the row's end added one at a time, each to
    /// its lane (b is a multiple of four; a lane without a block gets +0, which leaves its sum as it is: a sum that starts
    /// at +0 is never −0). Out of line, so that the loop above it keeps the JIT's inlining budget.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector128<float> SmallTail<TLoad>(Vector128<float> partials, byte* row, sbyte* a, float* scales, int b, int blocks)
        where TLoad : struct, ISmallBlockLoad
    {
        for (; b < blocks; b += 4)
        {
            int left = blocks - b;
            partials += Vector128.Create(
                SmallTerm<TLoad>(row, a, scales, b),
                left > 1 ? SmallTerm<TLoad>(row, a, scales, b + 1) : 0,
                left > 2 ? SmallTerm<TLoad>(row, a, scales, b + 2) : 0,
                left > 3 ? SmallTerm<TLoad>(row, a, scales, b + 3) : 0);
        }

        return partials;
    }

    /// <summary>Block <paramref name="b"/>'s term, one quant at a time.</summary>
    private static float SmallTerm<TLoad>(byte* row, sbyte* a, float* scales, int b)
        where TLoad : struct, ISmallBlockLoad
    {
        int dot = 0;
        for (int v = 32 * b; v < 32 * b + 32; v++)
        {
            dot += TLoad.Quant(row, v) * a[v];
        }

        return dot * (Half16.Read(row + (long)b * TLoad.BlockBytes) * scales[b]);
    }

    // Each token's row sum is the scalar reference's, bit for bit: integer block sums (exact in any order), then the
    // float term d·da·Σ − dmin·da·mins of super-block sb added to partial sum sb mod 4, and (p0 + p1) + (p2 + p3). So a
    // token's result does not depend on the tokens it is batched with, and greedy decoding follows the reference kernels.
    // One token and four (SuperDot4) are separate methods so that the JIT's inlining budget covers each one's loop.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SuperDot<TW, TB, TS, TI, TF, TLoad>(byte* first, long rowStride, int rows, int superBlocks, in QuantizedActivations a, int token, float* y, byte* prefetchEnd)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        TokenGroup g = a.Group(token, 1);
        // The type test is written out at each branch, not kept in a local: the JIT folds it only there, as it imports
        // the method, and then never looks at the other format's calls. Through a local, both branches' calls were
        // inlined in order and Q6_K's ScaledSum no longer fit the budget, so it ran as a call, at Tier 0 until it
        // tiered up (docs/benchmarks.md).
        sbyte* nibbleQuants = typeof(TW) == typeof(Int8Width512) && (typeof(TLoad) == typeof(Q4_KLoad) || typeof(TLoad) == typeof(Q5_KLoad))
            ? a.TokenNibbleQuants(token)
            : null;

        for (int i = 0; i < rows; i++)
        {
            byte* row = first + i * rowStride;

            // Four super-blocks' integer sums reduced together and their terms computed in the lanes of one vector
            // (each lane SuperTerm's operations), which is added to the four partial sums at once.
            Vector128<float> partials = default;
            int sb = 0;
            for (; sb <= superBlocks - 4; sb += 4)
            {
                byte* block = row + sb * TLoad.BlockBytes;
                sbyte* quants = g.Quants0 + 256 * sb;
                PrefetchLead(block, 4 * TLoad.BlockBytes, prefetchEnd, far: true);
                short* m = g.Sums0 + 16 * sb;
                if (typeof(TW) == typeof(Int8Width512) && (typeof(TLoad) == typeof(Q4_KLoad) || typeof(TLoad) == typeof(Q5_KLoad)))
                {
                    // Q4_K and Q5_K at 512 bits: gathering and widening the four headers piece by piece held this loop
                    // more than its multiply-adds did, and the nibbles are read 64 bytes at a time against activations
                    // in their order (TakesNibbleOrder; docs/benchmarks.md).
                    sbyte* pairs = nibbleQuants + 256 * sb;
                    Nibbles.Headers4(block, TLoad.BlockBytes, out Vector512<short> scales, out Vector512<short> mins, out Vector256<float> dd);
                    Vector128<int> sums = Nibbles.MinOffsets4(mins, m);
                    Vector128<int> dots = Int8Width512.SumInts4(
                        NibbleSum512<TLoad>(block, pairs, scales, 0), NibbleSum512<TLoad>(block + TLoad.BlockBytes, pairs + 256, scales, 8),
                        NibbleSum512<TLoad>(block + 2 * TLoad.BlockBytes, pairs + 512, scales, 16), NibbleSum512<TLoad>(block + 3 * TLoad.BlockBytes, pairs + 768, scales, 24));
                    partials += SuperTerms<TLoad>(dots, sums, dd.GetLower(), dd.GetUpper(), Vector128.Load(g.Scales0 + sb));
                    continue;
                }

                partials += ScaledTerms4<TW, TB, TS, TI, TF, TLoad>(block, quants, m, g.Scales0 + sb);
            }

            if (sb < superBlocks)
            {
                PrefetchLead(row + sb * TLoad.BlockBytes, (superBlocks - sb) * TLoad.BlockBytes, prefetchEnd);
                partials = SuperTail<TW, TB, TS, TI, TF, TLoad>(partials, row, g, sb, superBlocks);
            }

            y[i] = Combine(partials);
        }
    }

    /// <summary>The terms of four super-blocks from <paramref name="block"/> for one token, one per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> ScaledTerms4<TW, TB, TS, TI, TF, TLoad>(byte* block, sbyte* quants, short* sums, float* activationScales)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        TLoad.GroupScales4(
            block, out Vector256<short> s0, out Vector256<short> w0, out Vector256<short> s1, out Vector256<short> w1,
            out Vector256<short> s2, out Vector256<short> w2, out Vector256<short> s3, out Vector256<short> w3);
        // Folded as the method is imported, as in SuperDot. Q3_K's loads are larger: inlined sixteen times here they
        // left SuperDot no inlining budget, and helpers ran as calls.
        Vector128<int> dots = typeof(TW) == typeof(Int8Width512) && typeof(TLoad) != typeof(Q3_KLoad)
            ? ScaledSumsInline<TW, TB, TS, TI, TF, TLoad>(block, quants, s0, s1, s2, s3)
            : ScaledSums4<TW, TB, TS, TI, TF, TLoad>(block, quants, s0, s1, s2, s3);
        Vector128<int> offsets = TW.DotShorts4(w0, sums, w1, sums + 16, w2, sums + 32, w3, sums + 48);
        Vector256<float> multipliers = TLoad.Multipliers4(block);
        return SuperTerms<TLoad>(dots, offsets, multipliers.GetLower(), multipliers.GetUpper(), Vector128.Load(activationScales));
    }

    /// <summary>
    /// The four super-blocks' integer sums at under 512 bits, in a method of their own: their thirty-two scaled steps
    /// left no inlining budget in <see cref="SuperDot"/>, and some of them ran as calls. At 512 bits the sixteen fit, and
    /// a call per four super-blocks cost 3–5% in L2.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector128<int> ScaledSums4<TW, TB, TS, TI, TF, TLoad>(
        byte* block, sbyte* quants, Vector256<short> s0, Vector256<short> s1, Vector256<short> s2, Vector256<short> s3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad =>
        // Sixty-four steps at 128 bits, and Q3_K's larger loads at 512, fit the inlining budget one super-block at a time.
        typeof(TW) == typeof(Int8Width128) || typeof(TLoad) == typeof(Q3_KLoad)
            ? TW.SumInts4(
                ScaledSumAlone<TW, TB, TS, TI, TF, TLoad>(block, quants, s0),
                ScaledSumAlone<TW, TB, TS, TI, TF, TLoad>(block + TLoad.BlockBytes, quants + 256, s1),
                ScaledSumAlone<TW, TB, TS, TI, TF, TLoad>(block + 2 * TLoad.BlockBytes, quants + 512, s2),
                ScaledSumAlone<TW, TB, TS, TI, TF, TLoad>(block + 3 * TLoad.BlockBytes, quants + 768, s3))
            : ScaledSumsInline<TW, TB, TS, TI, TF, TLoad>(block, quants, s0, s1, s2, s3);

    /// <summary>The four super-blocks' integer sums, their group scales unpacked, one per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> ScaledSumsInline<TW, TB, TS, TI, TF, TLoad>(
        byte* block, sbyte* quants, Vector256<short> s0, Vector256<short> s1, Vector256<short> s2, Vector256<short> s3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad =>
        TW.SumInts4(
            ScaledSum<TW, TB, TS, TI, TF, TLoad>(block, quants, s0),
            ScaledSum<TW, TB, TS, TI, TF, TLoad>(block + TLoad.BlockBytes, quants + 256, s1),
            ScaledSum<TW, TB, TS, TI, TF, TLoad>(block + 2 * TLoad.BlockBytes, quants + 512, s2),
            ScaledSum<TW, TB, TS, TI, TF, TLoad>(block + 3 * TLoad.BlockBytes, quants + 768, s3));

    /// <summary><see cref="ScaledSum"/> in a method of its own, for the portable width's sixteen steps per super-block.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static TI ScaledSumAlone<TW, TB, TS, TI, TF, TLoad>(byte* block, sbyte* activations, Vector256<short> groupScales)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad =>
        ScaledSum<TW, TB, TS, TI, TF, TLoad>(block, activations, groupScales);

    /// <summary>
    /// One Q4_K or Q5_K super-block's integer Σ sc·q·a, its eight group scales at <paramref name="first"/> … first + 7
    /// of <paramref name="scales"/>, its activations in <see cref="QuantizedActivations.NibbleQuants"/>' order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> NibbleSum512<TLoad>(byte* block, sbyte* activations, Vector512<short> scales, int first)
        where TLoad : struct, ISuperBlockLoad =>
        NibbleStep512<TLoad>(NibbleStep512<TLoad>(default, block, activations, scales, first, 0), block, activations, scales, first, 1);

    /// <summary>sum + the scaled products of quants 128·<paramref name="k"/> … + 127: groups 4k and 4k + 2 in the low nibbles' halves, 4k + 1 and 4k + 3 in the high's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> NibbleStep512<TLoad>(Vector512<int> sum, byte* block, sbyte* activations, Vector512<short> scales, int first, int k)
        where TLoad : struct, ISuperBlockLoad
    {
        NibblePairs<TLoad>(block, k, out Vector512<byte> low, out Vector512<byte> high);
        NibbleScales(scales, first, k, out Vector512<short> lowScales, out Vector512<short> highScales);
        sum = Int8Width512.DotUnsignedScaled(sum, low, Int8Width512.LoadActivations(activations + 128 * k), lowScales);
        return Int8Width512.DotUnsignedScaled(sum, high, Int8Width512.LoadActivations(activations + 128 * k + 64), highScales);
    }

    /// <summary>The group scales of <see cref="NibbleStep512"/>'s low nibbles (groups 4k and 4k + 2, one per half) and high nibbles (4k + 1, 4k + 3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibbleScales(Vector512<short> scales, int first, int k, out Vector512<short> lowScales, out Vector512<short> highScales)
    {
        Vector512<short> groups = Vector512.Create((short)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)
            + Vector512.Create((short)(first + 4 * k));
        lowScales = Avx512BW.PermuteVar32x16(scales, groups);
        highScales = Avx512BW.PermuteVar32x16(scales, groups + Vector512<short>.One);
    }

    /// <summary>
    /// <see cref="SuperDot"/> of the four (or two or three, <typeparamref name="TTokens"/>) tokens from
    /// <paramref name="token"/>, sharing each weight load: at 512 bits by <see cref="NibbleDot4"/> or
    /// <see cref="GroupDot4"/>, four super-blocks at a time; otherwise one at a time here.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SuperDot4<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* row, int superBlocks, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (typeof(TW) == typeof(Int8Width512))
        {
            WideSuperDot<TLoad, TTokens>(row, superBlocks, a, token, y, yStride, prefetchEnd);
            return;
        }

        // Lanes past the count repeat the last token (TokenGroup), their integer sums zero, and are not stored.
        TokenGroup g = a.Group(token, TTokens.Count);

        // Four tokens, one per lane: q0 holds the partial sums of super-block sb mod 4, and the four rotate after each
        // super-block so that the next one's partials are in q0.
        Vector128<float> q0 = default, q1 = default, q2 = default, q3 = default;
        for (int sb = 0; sb < superBlocks; sb++)
        {
            byte* block = row + sb * TLoad.BlockBytes;
            PrefetchLead(block, TLoad.BlockBytes, prefetchEnd);
            TLoad.Header(block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin);
            int offset = 256 * sb;

            TI i0, i1, i2, i3;
            if (typeof(TW) == typeof(Int8Width128)) // sixty-four steps at 128 bits: one call per super-block
            {
                FourScaledSumsAlone<TW, TB, TS, TI, TF, TLoad, TTokens>(block, g, offset, groupScales, out i0, out i1, out i2, out i3);
            }
            else
            {
                FourScaledSums<TW, TB, TS, TI, TF, TLoad, TTokens>(block, g, offset, groupScales, out i0, out i1, out i2, out i3);
            }

            // The four tokens' terms side by side in one vector: each lane computes what SuperTerm does for one token.
            Vector128<int> dots = TW.SumInts4(i0, i1, i2, i3);
            int at = 16 * sb;
            Vector128<int> offsets = TW.DotShorts4(sumWeights, g.Sums0 + at, sumWeights, g.Sums1 + at, sumWeights, g.Sums2 + at, sumWeights, g.Sums3 + at);
            Vector128<float> sum = q0 + SuperTerms<TLoad>(dots, offsets, Vector128.Create(d), Vector128.Create(dmin), Vector128.Create(g.Scales0[sb], g.Scales1[sb], g.Scales2[sb], g.Scales3[sb]));
            q0 = q1;
            q1 = q2;
            q2 = q3;
            q3 = sum;
        }

        // After n super-blocks q_k holds the partials (n + k) mod 4: (p0 + p1) + (p2 + p3) is (q0 + q1) + (q2 + q3) for
        // an even n and (q3 + q0) + (q1 + q2) for an odd one, float addition being commutative.
        Vector128<float> result = (superBlocks & 1) == 0 ? (q0 + q1) + (q2 + q3) : (q3 + q0) + (q1 + q2);
        y[0] = result.ToScalar();
        y[yStride] = result.GetElement(1);
        if (TTokens.Count > 2)
        {
            y[2 * yStride] = result.GetElement(2);
        }

        if (TTokens.Count > 3)
        {
            y[3 * yStride] = result.GetElement(3);
        }
    }

    /// <summary>The 512-bit K-format kernel of <typeparamref name="TLoad"/> for <typeparamref name="TTokens"/> tokens: <see cref="NibbleDot4"/> for Q4_K and Q5_K, <see cref="GroupDot4"/> for the others.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WideSuperDot<TLoad, TTokens>(byte* row, int superBlocks, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (typeof(TLoad) == typeof(Q4_KLoad) || typeof(TLoad) == typeof(Q5_KLoad))
        {
            NibbleDot4<TLoad, TTokens>(row, superBlocks, a, token, y, yStride, prefetchEnd);
        }
        else
        {
            GroupDot4<TLoad, TTokens>(row, superBlocks, a, token, y, yStride, prefetchEnd);
        }
    }

    /// <summary>
    /// <see cref="SuperDot"/>'s 512-bit Q4_K/Q5_K loop for the four (or two or three, <typeparamref name="TTokens"/>) tokens from
    /// <paramref name="token"/>: each four super-blocks' header unpacked once and each weight load shared by them, every token's sums and float terms
    /// as <see cref="SuperDot"/> computes them alone, so its results are bit for bit the one-token kernel's. Where the
    /// general <see cref="SuperDot4"/> unpacks a header per super-block in scalar code and converts d and dmin one at a
    /// time, which held four tokens near the one-token kernel's cost per token (docs/benchmarks.md).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void NibbleDot4<TLoad, TTokens>(byte* row, int superBlocks, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        TokenGroup g = a.Group(token, TTokens.Count);
        sbyte* n0 = a.TokenNibbleQuants(token), n1 = a.TokenNibbleQuants(token + 1);
        sbyte* n2 = TTokens.Count > 2 ? a.TokenNibbleQuants(token + 2) : n1, n3 = TTokens.Count > 3 ? a.TokenNibbleQuants(token + 3) : n2;
        Vector128<float> p0 = default, p1 = default, p2 = default, p3 = default;
        int sb = 0;
        for (; sb <= superBlocks - 4; sb += 4)
        {
            byte* block = row + sb * TLoad.BlockBytes;
            PrefetchLead(block, 4 * TLoad.BlockBytes, prefetchEnd);
            Nibbles.Headers4(block, TLoad.BlockBytes, out Vector512<short> scales, out Vector512<short> mins, out Vector256<float> dd);
            sbyte* q0 = n0 + 256 * sb, q1 = n1 + 256 * sb, q2 = n2 + 256 * sb, q3 = n3 + 256 * sb;
            NibbleSums4<TLoad, TTokens>(block, q0, q1, q2, q3, scales, 0, out Vector512<int> a00, out Vector512<int> a10, out Vector512<int> a20, out Vector512<int> a30);
            NibbleSums4<TLoad, TTokens>(block + TLoad.BlockBytes, q0 + 256, q1 + 256, q2 + 256, q3 + 256, scales, 8, out Vector512<int> a01, out Vector512<int> a11, out Vector512<int> a21, out Vector512<int> a31);
            NibbleSums4<TLoad, TTokens>(block + 2 * TLoad.BlockBytes, q0 + 512, q1 + 512, q2 + 512, q3 + 512, scales, 16, out Vector512<int> a02, out Vector512<int> a12, out Vector512<int> a22, out Vector512<int> a32);
            NibbleSums4<TLoad, TTokens>(block + 3 * TLoad.BlockBytes, q0 + 768, q1 + 768, q2 + 768, q3 + 768, scales, 24, out Vector512<int> a03, out Vector512<int> a13, out Vector512<int> a23, out Vector512<int> a33);

            int m = 16 * sb;
            Vector128<float> d = dd.GetLower(), dmin = dd.GetUpper();
            p0 += SuperTerms<TLoad>(Int8Width512.SumInts4(a00, a01, a02, a03), Nibbles.MinOffsets4(mins, g.Sums0 + m), d, dmin, Vector128.Load(g.Scales0 + sb));
            p1 += SuperTerms<TLoad>(Int8Width512.SumInts4(a10, a11, a12, a13), Nibbles.MinOffsets4(mins, g.Sums1 + m), d, dmin, Vector128.Load(g.Scales1 + sb));
            if (TTokens.Count > 2)
            {
                p2 += SuperTerms<TLoad>(Int8Width512.SumInts4(a20, a21, a22, a23), Nibbles.MinOffsets4(mins, g.Sums2 + m), d, dmin, Vector128.Load(g.Scales2 + sb));
            }

            if (TTokens.Count > 3)
            {
                p3 += SuperTerms<TLoad>(Int8Width512.SumInts4(a30, a31, a32, a33), Nibbles.MinOffsets4(mins, g.Sums3 + m), d, dmin, Vector128.Load(g.Scales3 + sb));
            }
        }

        Finish4<TLoad, TTokens>(row, superBlocks, sb, a, token, y, yStride, prefetchEnd, p0, p1, p2, p3);
    }

    /// <summary>
    /// Q6_K, Q3_K and Q2_K (sixteen groups of 16 quants) at 512 bits for the four (or two or three) tokens from <paramref name="token"/>, as <see cref="NibbleDot4"/> is for Q4_K and
    /// Q5_K: four super-blocks' scales, sum weights and d at once (<see cref="ISuperBlockLoad.GroupScales4"/>,
    /// <see cref="ISuperBlockLoad.Multipliers4"/>), each weight load shared by the four tokens, and every token's sums
    /// and float terms as <see cref="SuperDot"/> computes them alone, bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GroupDot4<TLoad, TTokens>(byte* row, int superBlocks, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        TokenGroup g = a.Group(token, TTokens.Count);
        Vector128<float> p0 = default, p1 = default, p2 = default, p3 = default;
        int sb = 0;
        for (; sb <= superBlocks - 4; sb += 4)
        {
            byte* block = row + sb * TLoad.BlockBytes;
            PrefetchLead(block, 4 * TLoad.BlockBytes, prefetchEnd);
            TLoad.GroupScales4(
                block, out Vector256<short> s0, out Vector256<short> w0, out Vector256<short> s1, out Vector256<short> w1,
                out Vector256<short> s2, out Vector256<short> w2, out Vector256<short> s3, out Vector256<short> w3);
            int at = 256 * sb;
            GroupSums4<TLoad, TTokens>(block, g, at, s0, out Vector512<int> a00, out Vector512<int> a10, out Vector512<int> a20, out Vector512<int> a30);
            GroupSums4<TLoad, TTokens>(block + TLoad.BlockBytes, g, at + 256, s1, out Vector512<int> a01, out Vector512<int> a11, out Vector512<int> a21, out Vector512<int> a31);
            GroupSums4<TLoad, TTokens>(block + 2 * TLoad.BlockBytes, g, at + 512, s2, out Vector512<int> a02, out Vector512<int> a12, out Vector512<int> a22, out Vector512<int> a32);
            GroupSums4<TLoad, TTokens>(block + 3 * TLoad.BlockBytes, g, at + 768, s3, out Vector512<int> a03, out Vector512<int> a13, out Vector512<int> a23, out Vector512<int> a33);

            int m = 16 * sb;
            Vector256<float> dd = TLoad.Multipliers4(block);
            Vector128<float> d = dd.GetLower(), dmin = dd.GetUpper();
            p0 += SuperTerms<TLoad>(Int8Width512.SumInts4(a00, a01, a02, a03), Int8Width512.DotShorts4(w0, g.Sums0 + m, w1, g.Sums0 + m + 16, w2, g.Sums0 + m + 32, w3, g.Sums0 + m + 48), d, dmin, Vector128.Load(g.Scales0 + sb));
            p1 += SuperTerms<TLoad>(Int8Width512.SumInts4(a10, a11, a12, a13), Int8Width512.DotShorts4(w0, g.Sums1 + m, w1, g.Sums1 + m + 16, w2, g.Sums1 + m + 32, w3, g.Sums1 + m + 48), d, dmin, Vector128.Load(g.Scales1 + sb));
            if (TTokens.Count > 2)
            {
                p2 += SuperTerms<TLoad>(Int8Width512.SumInts4(a20, a21, a22, a23), Int8Width512.DotShorts4(w0, g.Sums2 + m, w1, g.Sums2 + m + 16, w2, g.Sums2 + m + 32, w3, g.Sums2 + m + 48), d, dmin, Vector128.Load(g.Scales2 + sb));
            }

            if (TTokens.Count > 3)
            {
                p3 += SuperTerms<TLoad>(Int8Width512.SumInts4(a30, a31, a32, a33), Int8Width512.DotShorts4(w0, g.Sums3 + m, w1, g.Sums3 + m + 16, w2, g.Sums3 + m + 32, w3, g.Sums3 + m + 48), d, dmin, Vector128.Load(g.Scales3 + sb));
            }
        }

        Finish4<TLoad, TTokens>(row, superBlocks, sb, a, token, y, yStride, prefetchEnd, p0, p1, p2, p3);
    }

    /// <summary>Four tokens' integer Σ sc·q·a of one Q6_K, Q3_K or Q2_K super-block (its activations at <paramref name="offset"/>), one weight load per 64 quants for all.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupSums4<TLoad, TTokens>(byte* block, in TokenGroup g, int offset, Vector256<short> groupScales, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        // Unrolled by hand, so that each load's quarter is a constant.
        s0 = s1 = s2 = s3 = default;
        FourScaledSteps<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, g, offset, groupScales, 0);
        FourScaledSteps<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, g, offset, groupScales, 64);
        FourScaledSteps<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, g, offset, groupScales, 128);
        FourScaledSteps<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, g, offset, groupScales, 192);
    }

    /// <summary>Four tokens' integer Σ sc·q·a of one super-block, as <see cref="NibbleSum512"/> computes each, sharing the weight loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibbleSums4<TLoad, TTokens>(
        byte* block, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, Vector512<short> scales, int first,
        out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        s0 = s1 = s2 = s3 = default;
        NibbleSteps4<TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, a0, a1, a2, a3, scales, first, 0);
        NibbleSteps4<TLoad, TTokens>(ref s0, ref s1, ref s2, ref s3, block, a0, a1, a2, a3, scales, first, 1);
    }

    /// <summary><see cref="NibbleStep512"/> of four tokens, one weight load and one scale spread for all.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibbleSteps4<TLoad, TTokens>(
        ref Vector512<int> s0, ref Vector512<int> s1, ref Vector512<int> s2, ref Vector512<int> s3,
        byte* block, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, Vector512<short> scales, int first, int k)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        NibblePairs<TLoad>(block, k, out Vector512<byte> low, out Vector512<byte> high);
        NibbleScales(scales, first, k, out Vector512<short> lowScales, out Vector512<short> highScales);
        int at = 128 * k;
        s0 = Int8Width512.DotUnsignedScaled(Int8Width512.DotUnsignedScaled(s0, low, Int8Width512.LoadActivations(a0 + at), lowScales), high, Int8Width512.LoadActivations(a0 + at + 64), highScales);
        s1 = Int8Width512.DotUnsignedScaled(Int8Width512.DotUnsignedScaled(s1, low, Int8Width512.LoadActivations(a1 + at), lowScales), high, Int8Width512.LoadActivations(a1 + at + 64), highScales);
        if (TTokens.Count > 2)
        {
            s2 = Int8Width512.DotUnsignedScaled(Int8Width512.DotUnsignedScaled(s2, low, Int8Width512.LoadActivations(a2 + at), lowScales), high, Int8Width512.LoadActivations(a2 + at + 64), highScales);
        }

        if (TTokens.Count > 3)
        {
            s3 = Int8Width512.DotUnsignedScaled(Int8Width512.DotUnsignedScaled(s3, low, Int8Width512.LoadActivations(a3 + at), lowScales), high, Int8Width512.LoadActivations(a3 + at + 64), highScales);
        }
    }

    /// <summary>Quants 128·<paramref name="k"/> … + 127 of a Q4_K or Q5_K super-block in the nibble order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibblePairs<TLoad>(byte* block, int k, out Vector512<byte> low, out Vector512<byte> high)
        where TLoad : struct, ISuperBlockLoad
    {
        if (typeof(TLoad) == typeof(Q4_KLoad))
        {
            Q4_KLoad.Pairs512(block, k, out low, out high);
        }
        else
        {
            Q5_KLoad.Pairs512(block, k, out low, out high);
        }
    }

    /// <summary>
    /// The end of <see cref="NibbleDot4"/> and <see cref="GroupDot4"/>: the four (or two or three) tokens' super-blocks from
    /// <paramref name="sb"/> to the row's end added to their lanes, and each token's (p0 + p1) + (p2 + p3) stored (out
    /// of line, so that the loops before it keep the JIT's inlining budget).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Finish4<TLoad, TTokens>(
        byte* row, int superBlocks, int sb, in QuantizedActivations a, int token, float* y, long yStride, byte* prefetchEnd,
        Vector128<float> p0, Vector128<float> p1, Vector128<float> p2, Vector128<float> p3)
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (sb < superBlocks)
        {
            PrefetchLead(row + sb * TLoad.BlockBytes, (superBlocks - sb) * TLoad.BlockBytes, prefetchEnd);
            p0 = SuperTail<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad>(p0, row, a.Group(token, 1), sb, superBlocks);
            p1 = SuperTail<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad>(p1, row, a.Group(token + 1, 1), sb, superBlocks);
            if (TTokens.Count > 2)
            {
                p2 = SuperTail<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad>(p2, row, a.Group(token + 2, 1), sb, superBlocks);
            }

            if (TTokens.Count > 3)
            {
                p3 = SuperTail<Int8Width512, Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>, TLoad>(p3, row, a.Group(token + 3, 1), sb, superBlocks);
            }
        }

        StoreCombined<TTokens>(y, yStride, p0, p1, p2, p3);
    }

    /// <summary>
    /// <paramref name="partials"/> with one token's last up to three super-blocks, from <paramref name="sb"/> to the
    /// row's end, added to their lanes (+0 in the others leaves those sums as they are). Rare (no Qwen3 width has any),
    /// so not inlined.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector128<float> SuperTail<TW, TB, TS, TI, TF, TLoad>(Vector128<float> partials, byte* row, in TokenGroup g, int sb, int superBlocks)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        int left = superBlocks - sb;
        return partials + Vector128.Create(
            OneSuperTerm<TW, TB, TS, TI, TF, TLoad>(row, g, sb),
            left > 1 ? OneSuperTerm<TW, TB, TS, TI, TF, TLoad>(row, g, sb + 1) : 0,
            left > 2 ? OneSuperTerm<TW, TB, TS, TI, TF, TLoad>(row, g, sb + 2) : 0,
            0);
    }

    /// <summary>
    /// Whether the matrix-vector kernels prefetch their weights a few lines at a time between the dot products
    /// (<see cref="PrefetchLead"/>), not a row's worth at once before them, so the core computes while the lines arrive
    /// (Intel, Q8_0, four streams: 17.0 against 14.0 t/s under load; AMD Zen 5, one stream: Q8_0 14.7 against 10.0 t/s,
    /// Q4_K_M 28.2 against 25.0; Intel, eight Q4_K_M streams in two groups of four: +5%, docs/benchmarks.md).
    /// </summary>
    private static bool InterleavedPrefetch => Sse.IsSupported;

    /// <summary>
    /// Whether the one-token kernels also prefetch their weights <see cref="FarLeadBytes"/> ahead into L2 (Intel): on
    /// the Intel Xeon one token's dot products wait on memory about as long as on their own instructions, and the
    /// second, farther prefetch keeps more lines in flight than the L1's fill buffers hold (docs/benchmarks.md).
    /// </summary>
    private static readonly bool FarPrefetchToL2 = CpuIdentity.IsIntel;

    /// <summary>How far ahead of its reads a one-token kernel prefetches into L2 where <see cref="FarPrefetchToL2"/>.</summary>
    private const int FarLeadBytes = 3 * MatMul.StepLeadBytes;

    /// <summary>
    /// Weights read <see cref="MatMul.StepLeadBytes"/> after the <paramref name="bytes"/> from <paramref name="block"/>,
    /// prefetched up to <paramref name="end"/> (none if null); for a one-token kernel (<paramref name="far"/>) also
    /// those <see cref="FarLeadBytes"/> after, into L2, where <see cref="FarPrefetchToL2"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLead(byte* block, int bytes, byte* end, bool far = false)
    {
        if (end == null || !Sse.IsSupported)
        {
            return;
        }

        byte* stop = block + MatMul.StepLeadBytes + bytes;
        MatMul.PrefetchRange(block + MatMul.StepLeadBytes, stop < end ? stop : end);
        if (far && FarPrefetchToL2)
        {
            byte* farStop = block + FarLeadBytes + bytes;
            MatMul.PrefetchRange(block + FarLeadBytes, farStop < end ? farStop : end, toL2: true);
        }
    }

    /// <summary>The one token's term of super-block <paramref name="sb"/> alone (rare: not inlined, to leave SuperDot's loop the JIT's inlining budget).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float OneSuperTerm<TW, TB, TS, TI, TF, TLoad>(byte* row, in TokenGroup g, int sb)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        byte* block = row + sb * TLoad.BlockBytes;
        TLoad.Header(block, out Vector256<short> groupScales, out Vector256<short> weights, out float d, out float dmin);
        TI dot = ScaledSum<TW, TB, TS, TI, TF, TLoad>(block, g.Quants0 + 256 * sb, groupScales);
        return SuperTerm<TLoad>(TW.SumInts(dot), TW.DotShorts(weights, g.Sums0 + 16 * sb), d, dmin, g.Scales0[sb]);
    }

    /// <summary>A super-block's float term as <see cref="QuantizedReference.Dot"/> computes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SuperTerm<TLoad>(int dot, int offset, float d, float dmin, float da)
        where TLoad : struct, ISuperBlockLoad =>
        TLoad.OffsetIsMin ? d * da * (dot - offset) : d * da * dot - dmin * da * offset;

    /// <summary><see cref="SuperTerm"/> for four tokens or super-blocks at once, one per lane, with the same operations in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SuperTerms<TLoad>(Vector128<int> dots, Vector128<int> offsets, Vector128<float> d, Vector128<float> dmin, Vector128<float> da)
        where TLoad : struct, ISuperBlockLoad =>
        TLoad.OffsetIsMin
            ? d * da * Vector128.ConvertToSingle(dots - offsets)
            : d * da * Vector128.ConvertToSingle(dots) - dmin * da * Vector128.ConvertToSingle(offsets);

    /// <summary>One super-block's integer Σ sc·q·a in the lanes of a vector, its group scales already unpacked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TI ScaledSum<TW, TB, TS, TI, TF, TLoad>(byte* block, sbyte* activations, Vector256<short> groupScales)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
    {
        // Unrolled by hand at 512 and 256 bits: the JIT leaves Q6_K's loop rolled, and its loads then pick their shifts
        // and masks at run time.
        TI sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(default, block, activations, groupScales, 0);
        sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, TW.Count);
        sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 2 * TW.Count);
        sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 3 * TW.Count);
        if (TW.Count < 64)
        {
            sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 4 * TW.Count);
            sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 5 * TW.Count);
            sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 6 * TW.Count);
            sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, 7 * TW.Count);
        }

        for (int v = 8 * TW.Count; v < 256; v += TW.Count)
        {
            sum = ScaledStep<TW, TB, TS, TI, TF, TLoad>(sum, block, activations, groupScales, v);
        }

        return sum;
    }

    /// <summary>The four tokens' integer Σ sc·q·a of one super-block, in the lanes of i0 … i3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourScaledSums<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* block, in TokenGroup g, int offset, Vector256<short> groupScales, out TI i0, out TI i1, out TI i2, out TI i3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        // Unrolled by hand, as ScaledSum.
        i0 = default;
        i1 = default;
        i2 = default;
        i3 = default;
        FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 0);
        FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, TW.Count);
        FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 2 * TW.Count);
        FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 3 * TW.Count);
        if (TW.Count < 64)
        {
            FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 4 * TW.Count);
            FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 5 * TW.Count);
            FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 6 * TW.Count);
            FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, 7 * TW.Count);
        }

        for (int v = 8 * TW.Count; v < 256; v += TW.Count)
        {
            FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref i0, ref i1, ref i2, ref i3, block, g, offset, groupScales, v);
        }
    }

    /// <summary><see cref="FourScaledSums"/> in a method of its own, for the portable width's sixty-four steps.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void FourScaledSumsAlone<TW, TB, TS, TI, TF, TLoad, TTokens>(byte* block, in TokenGroup g, int offset, Vector256<short> groupScales, out TI i0, out TI i1, out TI i2, out TI i3)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount =>
        FourScaledSums<TW, TB, TS, TI, TF, TLoad, TTokens>(block, g, offset, groupScales, out i0, out i1, out i2, out i3);

    /// <summary><see cref="ScaledStep"/> of four tokens, the weights loaded and their scales spread once for all four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourScaledSteps<TW, TB, TS, TI, TF, TLoad, TTokens>(ref TI i0, ref TI i1, ref TI i2, ref TI i3, byte* block, in TokenGroup g, int offset, Vector256<short> groupScales, int value)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad
        where TTokens : struct, ITokenCount
    {
        TB weights = TW.LoadWeights<TLoad>(block, value);
        TS scales = TW.SpreadScales(groupScales, value, TLoad.GroupShift);
        i0 = TW.DotUnsignedScaled(i0, weights, TW.LoadActivations(g.Quants0 + offset + value), scales);
        i1 = TW.DotUnsignedScaled(i1, weights, TW.LoadActivations(g.Quants1 + offset + value), scales);
        if (TTokens.Count > 2)
        {
            i2 = TW.DotUnsignedScaled(i2, weights, TW.LoadActivations(g.Quants2 + offset + value), scales);
        }

        if (TTokens.Count > 3)
        {
            i3 = TW.DotUnsignedScaled(i3, weights, TW.LoadActivations(g.Quants3 + offset + value), scales);
        }
    }

    /// <summary>sum + the scaled products of the vector of quants from <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TI ScaledStep<TW, TB, TS, TI, TF, TLoad>(TI sum, byte* block, sbyte* activations, Vector256<short> groupScales, int value)
        where TW : struct, IInt8Width<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TLoad : struct, ISuperBlockLoad =>
        TW.DotUnsignedScaled(sum, TW.LoadWeights<TLoad>(block, value), TW.LoadActivations(activations + value), TW.SpreadScales(groupScales, value, TLoad.GroupShift));

    /// <summary>The rows of a <see cref="RowSplitJob{TMatrix, TProduct}"/> over x, quantized in each activation format the matrices need.</summary>
    private readonly struct Product : IRowProduct<QuantizedMatrix>
    {
        private readonly QuantizedActivations _small, _super;
        private readonly int _tokens;
        private readonly KernelPath _path;
        private readonly bool _vnni;

        public Product(QuantizedActivations small, QuantizedActivations super, int tokens, KernelPath path)
        {
            _small = small;
            _super = super;
            _tokens = tokens;
            _path = path;
            _vnni = UsesVnni(path);
        }

        public static int RowCount(in QuantizedMatrix w) => w.Rows;

        public void Rows(in QuantizedMatrix w, float* y, int rowStart, int rowEnd) =>
            QuantizedMatMul.Rows(w, QuantizedFormat.ActivationType(w.Type) == GgmlType.Q8_0 ? _small : _super, y, _tokens, rowStart, rowEnd, _path, _vnni);

        public void SwiGlu(Span<float> gate, ReadOnlySpan<float> up) => Kernels.SwiGlu.Apply(gate, up);
    }
}
