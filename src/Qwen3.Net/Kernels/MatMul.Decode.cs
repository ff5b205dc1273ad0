using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-vector products for one or a few tokens: memory-bound, so the point is to stream each weight row once at
// full bandwidth. For one token each thread reads its rows one after another as a single sequential stream: on the 1.7B shapes that
// runs as fast as a plain sum over the same bytes, while interleaving two or four row streams (to share the x loads)
// was 15–55% slower at 2 threads, the prefetchers losing track of several streams that each cross a page every row.
// A row is summed the same way wherever it falls, so results do not depend on the thread split.
// A batch of decoding sequences (2–4 tokens) reads each weight once for all of them, 16 rows at a time in 512-column
// blocks, so the blocks of x (8 KiB for four tokens) are read from L1 by all 16 rows: four tokens' whole x at 6144
// columns is 96 KiB, past L1, and the two-row kernel this replaced reread it from L2 for every row pair. Each row and
// token keeps the one-token kernel's four chains across the blocks, so a sequence's results are bit-identical whatever
// it is batched with (docs/benchmarks.md, "Batched decode kernel").
internal static unsafe partial class MatMul
{
    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> touches pages: two 4 KiB pages.</summary>
    private const int PageLeadBytes = 8192;

    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> prefetches lines where it does.</summary>
    private const int LineLeadBytes = 2048;

    /// <summary>Columns per block of the batched kernel: four tokens' x of one block is 8 KiB, held in L1.</summary>
    internal const int BatchColumns = 512;

    /// <summary>Rows the batched kernel sweeps together, block by block, each reading the same blocks of x.</summary>
    internal const int BatchRows = 16;

    /// <summary>
    /// Whether <see cref="PrefetchAhead"/> prefetches every cache line (Intel) or touches each page (others): the
    /// better of the two differs by CPU family in both directions (docs/benchmarks.md, "Decode prefetch").
    /// </summary>
    internal static readonly bool PrefetchLines = IsGenuineIntel();

    /// <summary>F16 rows widened to float32 on this thread (.NET exposes no vcvtph2ps); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_widened;

    /// <summary>The batched kernel's chains between column blocks, cache-line aligned; allocated once per thread.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_carried;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MatVecRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        if (tokens > 1)
        {
            BatchedRows(w, x, y, tokens, rowStart, rowEnd, path);
            return;
        }

        int columns = w.Columns;
        float[]? widened = w.Type == TensorDType.F16 ? Widened(columns) : null;
        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.Row(r);
                PrefetchAhead(row, w.RowStride, end);
                TensorDType type = w.Type;
                if (type == TensorDType.F16)
                {
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, columns), new Span<float>(pWidened, columns));
                    row = (byte*)pWidened;
                    type = TensorDType.F32;
                }

                y[r] = Dot(type, row, x, columns, path);
            }
        }
    }

    /// <summary>
    /// Where the batched kernel reads <paramref name="d"/> row blocks after row <paramref name="r"/>'s block
    /// <paramref name="b"/> of the group [<paramref name="g0"/>, <paramref name="g1"/>), in the order it reads them
    /// (the group's rows, then its next column block, then the next group), and that block's length in bytes; null
    /// past <paramref name="rowEnd"/>.
    /// </summary>
    private static byte* BlockAhead(in WeightMatrix w, int rowEnd, int g0, int g1, int r, int b, int blocks, int d, out long length)
    {
        int offset = r - g0 + d, size = g1 - g0, start = g0;
        while (offset >= size)
        {
            offset -= size;
            if (++b == blocks)
            {
                b = 0;
                start += size;
                size = Math.Min(BatchRows, rowEnd - start);
                if (size <= 0)
                {
                    length = 0;
                    return null;
                }
            }
        }

        int from = b * BatchColumns;
        int to = b == blocks - 1 ? w.Columns : from + BatchColumns;
        length = (long)(to - from) * w.ElementSize;
        return w.Row(start + offset) + (long)from * w.ElementSize;
    }

    private static float[] Widened(int length)
    {
        float[]? widened = t_widened;
        if (widened is null || widened.Length < length)
        {
            widened = t_widened = new float[length];
        }

        return widened;
    }

    private static void BatchedRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        bool bf16 = w.Type == TensorDType.BF16;
        switch (path)
        {
            case KernelPath.Avx512 when bf16: Batched<Width512, Vector512<float>, Bf16>(w, x, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx512: Batched<Width512, Vector512<float>, F32>(w, x, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx2 when bf16: Batched<Width256, Vector256<float>, Bf16>(w, x, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx2: Batched<Width256, Vector256<float>, F32>(w, x, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Portable when bf16: Batched<Width128, Vector128<float>, Bf16>(w, x, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Portable: Batched<Width128, Vector128<float>, F32>(w, x, y, tokens, rowStart, rowEnd); break;
            default: throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path");
        }
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) of y = W·x for two or more tokens: <see cref="BatchRows"/> rows at a time, each swept
    /// in blocks of <see cref="BatchColumns"/> columns, so a block of every token's x is read from L1 by all the rows
    /// of the group. Each row and token keeps the four chains of <see cref="Dot{TWidth, TVector, TLoad}"/>, carried in
    /// memory from one block to the next, so every output is bit-identical to the one-token kernel's. F32 rows (and
    /// F16 rows widened to F32 a group at a time) go through <typeparamref name="TLoad"/> = <see cref="F32"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Batched<TWidth, TVector, TLoad>(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        int columns = w.Columns;
        int chainFloats = 4 * TWidth.Count;
        // Four tokens' sixteen chains fit AVX-512's 32 registers; with 16 registers two tokens' eight do.
        int passTokens = TWidth.Registers >= 32 ? 4 : 2;
        int mainEnd = columns - columns % chainFloats;
        int blocks = Math.Max(1, (mainEnd + BatchColumns - 1) / BatchColumns);
        bool f16 = w.Type == TensorDType.F16;
        long rowStride = f16 ? (long)columns * sizeof(float) : w.RowStride;
        // Row blocks ahead to prefetch: LineLeadBytes, as the one-token kernel's lead.
        int lead = Math.Max(1, LineLeadBytes / (BatchColumns * w.ElementSize));
        int carriedFloats = BatchRows * tokens * chainFloats;
        if (t_carried is null || t_carried.Length < carriedFloats)
        {
            t_carried?.Dispose();
            t_carried = new AlignedBuffer(carriedFloats);
        }

        float* carried = t_carried.Pointer;
        float[]? widened = f16 ? Widened(BatchRows * columns) : null;
        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);
            for (int g0 = rowStart; g0 < rowEnd; g0 += BatchRows)
            {
                int g1 = Math.Min(g0 + BatchRows, rowEnd);
                byte* rows = w.Row(g0);
                if (f16)
                {
                    for (int r = g0; r < g1; r++)
                    {
                        PrefetchAhead(w.Row(r), w.RowStride, end);
                        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w.Row(r), columns), new Span<float>(pWidened + (long)(r - g0) * columns, columns));
                    }

                    rows = (byte*)pWidened;
                }

                for (int b = 0; b < blocks; b++)
                {
                    int from = b * BatchColumns;
                    bool last = b == blocks - 1;
                    int to = last ? mainEnd : from + BatchColumns;
                    for (int r = g0; r < g1; r++)
                    {
                        byte* row = rows + (r - g0) * rowStride;
                        long aheadLength = 0;
                        byte* ahead = f16 ? null : BlockAhead(w, rowEnd, g0, g1, r, b, blocks, lead, out aheadLength);
                        if (ahead != null)
                        {
                            PrefetchBlock(ahead, aheadLength);
                        }

                        for (int t = 0; t < tokens; t += passTokens)
                        {
                            float* chains = carried + ((long)(r - g0) * tokens + t) * chainFloats;
                            float* xt = x + (long)t * columns;
                            float* yt = y + (long)t * w.Rows + r;
                            switch (Math.Min(passTokens, tokens - t))
                            {
                                case 1: Chains<TWidth, TVector, TLoad, OneToken>(row, xt, columns, from, to, b == 0, last, chains, yt, w.Rows); break;
                                case 2: Chains<TWidth, TVector, TLoad, TwoTokens>(row, xt, columns, from, to, b == 0, last, chains, yt, w.Rows); break;
                                case 3: Chains<TWidth, TVector, TLoad, ThreeTokens>(row, xt, columns, from, to, b == 0, last, chains, yt, w.Rows); break;
                                default: Chains<TWidth, TVector, TLoad, FourTokens>(row, xt, columns, from, to, b == 0, last, chains, yt, w.Rows); break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Columns [from, to) of one row against one to four tokens (x rows <paramref name="columns"/> apart), in the four
    /// chains per token of <see cref="Dot{TWidth, TVector, TLoad}"/>: taken from <paramref name="carried"/> unless
    /// <paramref name="first"/>, left there unless <paramref name="last"/>, when the lone vectors and the scalar tail
    /// are added and y[t · yStride] written as Dot would. Each weight vector is loaded and widened once for all tokens.
    /// </summary>
    /// <remarks>
    /// Written out per chain: through a helper taking the x pointers, the JIT computed each offset address in an
    /// instruction of its own (16 more per iteration) instead of folding it into the multiply-add's memory operand.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chains<TWidth, TVector, TLoad, TTokens>(
        byte* row, float* x, int columns, int from, int to, bool first, bool last, float* carried, float* y, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
        where TTokens : struct, ITokenCount
    {
        float* x0 = x, x1 = x + columns, x2 = x + 2 * columns, x3 = x + 3 * columns;
        TVector a0 = default, b0 = default, c0 = default, d0 = default;
        TVector a1 = default, b1 = default, c1 = default, d1 = default;
        TVector a2 = default, b2 = default, c2 = default, d2 = default;
        TVector a3 = default, b3 = default, c3 = default, d3 = default;
        if (!first)
        {
            Load4<TWidth, TVector>(carried, out a0, out b0, out c0, out d0);
            if (TTokens.Count > 1)
            {
                Load4<TWidth, TVector>(carried + 4 * TWidth.Count, out a1, out b1, out c1, out d1);
            }

            if (TTokens.Count > 2)
            {
                Load4<TWidth, TVector>(carried + 8 * TWidth.Count, out a2, out b2, out c2, out d2);
            }

            if (TTokens.Count > 3)
            {
                Load4<TWidth, TVector>(carried + 12 * TWidth.Count, out a3, out b3, out c3, out d3);
            }
        }

        for (int i = from; i < to; i += 4 * TWidth.Count)
        {
            TVector w = TWidth.LoadWeights<TLoad>(row, i);
            a0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i), a0);
            if (TTokens.Count > 1)
            {
                a1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i), a1);
            }

            if (TTokens.Count > 2)
            {
                a2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i), a2);
            }

            if (TTokens.Count > 3)
            {
                a3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i), a3);
            }

            w = TWidth.LoadWeights<TLoad>(row, i + TWidth.Count);
            b0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + TWidth.Count), b0);
            if (TTokens.Count > 1)
            {
                b1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + TWidth.Count), b1);
            }

            if (TTokens.Count > 2)
            {
                b2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + TWidth.Count), b2);
            }

            if (TTokens.Count > 3)
            {
                b3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + TWidth.Count), b3);
            }

            w = TWidth.LoadWeights<TLoad>(row, i + 2 * TWidth.Count);
            c0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + 2 * TWidth.Count), c0);
            if (TTokens.Count > 1)
            {
                c1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + 2 * TWidth.Count), c1);
            }

            if (TTokens.Count > 2)
            {
                c2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + 2 * TWidth.Count), c2);
            }

            if (TTokens.Count > 3)
            {
                c3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + 2 * TWidth.Count), c3);
            }

            w = TWidth.LoadWeights<TLoad>(row, i + 3 * TWidth.Count);
            d0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + 3 * TWidth.Count), d0);
            if (TTokens.Count > 1)
            {
                d1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + 3 * TWidth.Count), d1);
            }

            if (TTokens.Count > 2)
            {
                d2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + 3 * TWidth.Count), d2);
            }

            if (TTokens.Count > 3)
            {
                d3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + 3 * TWidth.Count), d3);
            }
        }

        if (!last)
        {
            Store4<TWidth, TVector>(carried, a0, b0, c0, d0);
            if (TTokens.Count > 1)
            {
                Store4<TWidth, TVector>(carried + 4 * TWidth.Count, a1, b1, c1, d1);
            }

            if (TTokens.Count > 2)
            {
                Store4<TWidth, TVector>(carried + 8 * TWidth.Count, a2, b2, c2, d2);
            }

            if (TTokens.Count > 3)
            {
                Store4<TWidth, TVector>(carried + 12 * TWidth.Count, a3, b3, c3, d3);
            }

            return;
        }

        int k = to;
        for (; k <= columns - TWidth.Count; k += TWidth.Count)
        {
            TVector w = TWidth.LoadWeights<TLoad>(row, k);
            a0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + k), a0);
            if (TTokens.Count > 1)
            {
                a1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + k), a1);
            }

            if (TTokens.Count > 2)
            {
                a2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + k), a2);
            }

            if (TTokens.Count > 3)
            {
                a3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + k), a3);
            }
        }

        y[0] = TWidth.Sum(TWidth.Add(TWidth.Add(a0, b0), TWidth.Add(c0, d0))) + Tail<TLoad>(row, x0, k, columns);
        if (TTokens.Count > 1)
        {
            y[yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a1, b1), TWidth.Add(c1, d1))) + Tail<TLoad>(row, x1, k, columns);
        }

        if (TTokens.Count > 2)
        {
            y[2 * yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a2, b2), TWidth.Add(c2, d2))) + Tail<TLoad>(row, x2, k, columns);
        }

        if (TTokens.Count > 3)
        {
            y[3 * yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a3, b3), TWidth.Add(c3, d3))) + Tail<TLoad>(row, x3, k, columns);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load4<TWidth, TVector>(float* source, out TVector a, out TVector b, out TVector c, out TVector d)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        a = TWidth.Load(source);
        b = TWidth.Load(source + TWidth.Count);
        c = TWidth.Load(source + 2 * TWidth.Count);
        d = TWidth.Load(source + 3 * TWidth.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4<TWidth, TVector>(float* destination, TVector a, TVector b, TVector c, TVector d)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        TWidth.Store(a, destination);
        TWidth.Store(b, destination + TWidth.Count);
        TWidth.Store(c, destination + 2 * TWidth.Count);
        TWidth.Store(d, destination + 3 * TWidth.Count);
    }

    /// <summary>
    /// Starts the reads of a block of weights that the batched kernel reads next (<paramref name="length"/> bytes at
    /// <paramref name="start"/>): every line on Intel, the first two lines elsewhere (<see cref="PrefetchAhead"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchBlock(byte* start, long length)
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        if (PrefetchLines)
        {
            for (byte* line = start, stop = start + length; line < stop; line += 64)
            {
                Sse.Prefetch0(line);
            }

            return;
        }

        Sse.Prefetch0(start);
        Sse.Prefetch0(start + 64);
    }

    /// <summary>
    /// Starts the reads of the weights ahead of the row about to be read, up to <paramref name="end"/>, as the
    /// CPU family prefers (<see cref="PrefetchLines"/>). On AMD Zen the hardware prefetchers stop at each page boundary
    /// and take a while to pick up the next page (a 2048-column BF16 row is exactly one page), so touching the first
    /// two lines of each page <see cref="PageLeadBytes"/> ahead gets each page's stream going early, while prefetching
    /// every line was 8–22% slower there. On an Intel Xeon (Sapphire Rapids class) it is the reverse: a prefetch of
    /// every line <see cref="LineLeadBytes"/> ahead read the weights about 25% faster than the page touches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchAhead(byte* row, long length, byte* end)
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        if (PrefetchLines)
        {
            byte* stopLine = row + LineLeadBytes + length;
            if (stopLine > end)
            {
                stopLine = end;
            }

            for (byte* line = row + LineLeadBytes; line < stopLine; line += 64)
            {
                Sse.Prefetch0(line);
            }

            return;
        }

        byte* stop = row + PageLeadBytes + length;
        if (stop > end)
        {
            stop = end;
        }

        for (byte* page = row + PageLeadBytes; page < stop; page += 4096)
        {
            Sse.Prefetch0(page);
            Sse.Prefetch0(page + 64);
        }
    }

    private static bool IsGenuineIntel()
    {
        if (!X86Base.IsSupported)
        {
            return false;
        }

        // The vendor string is EBX, EDX, ECX of leaf 0.
        (_, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        return ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;
    }

    private static float Dot(TensorDType type, byte* row, float* x, int columns, KernelPath path)
    {
        bool bf16 = type == TensorDType.BF16;
        return path switch
        {
            KernelPath.Avx512 when bf16 => Dot<Width512, Vector512<float>, Bf16>(row, x, columns),
            KernelPath.Avx512 => Dot<Width512, Vector512<float>, F32>(row, x, columns),
            KernelPath.Avx2 when bf16 => Dot<Width256, Vector256<float>, Bf16>(row, x, columns),
            KernelPath.Avx2 => Dot<Width256, Vector256<float>, F32>(row, x, columns),
            KernelPath.Portable when bf16 => Dot<Width128, Vector128<float>, Bf16>(row, x, columns),
            KernelPath.Portable => Dot<Width128, Vector128<float>, F32>(row, x, columns),
            _ => throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path"),
        };
    }

    // Four accumulators hide the FMA latency; the x loads hit L1. TWidth.Count is written out in each offset rather than
    // kept in a local: that way the JIT folds it into the load addresses, as in a hand-written copy per width.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<TWidth, TVector, TLoad>(byte* row, float* x, int columns)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        TVector a = default, b = default, c = default, d = default;
        int i = 0;
        for (; i <= columns - 4 * TWidth.Count; i += 4 * TWidth.Count)
        {
            a = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, i), TWidth.Load(x + i), a);
            b = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, i + TWidth.Count), TWidth.Load(x + i + TWidth.Count), b);
            c = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, i + 2 * TWidth.Count), TWidth.Load(x + i + 2 * TWidth.Count), c);
            d = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, i + 3 * TWidth.Count), TWidth.Load(x + i + 3 * TWidth.Count), d);
        }

        for (; i <= columns - TWidth.Count; i += TWidth.Count)
        {
            a = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, i), TWidth.Load(x + i), a);
        }

        return TWidth.Sum(TWidth.Add(TWidth.Add(a, b), TWidth.Add(c, d))) + Tail<TLoad>(row, x, i, columns);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail<TLoad>(byte* row, float* x, int from, int columns)
        where TLoad : struct, IWeightLoad
    {
        float sum = 0;
        for (int c = from; c < columns; c++)
        {
            sum += TLoad.Load(row, c) * x[c];
        }

        return sum;
    }
}
