using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-vector products for one or a few tokens: memory-bound, so the point is to stream each weight row once at
// full bandwidth. Each thread reads its rows one after another as a single sequential stream: on the 1.7B shapes that
// runs as fast as a plain sum over the same bytes, while interleaving two or four row streams (to share the x loads)
// was 15–55% slower at 2 threads, the prefetchers losing track of several streams that each cross a page every row.
// A row is summed the same way wherever it falls, so results do not depend on the thread split.
internal static unsafe partial class MatMul
{
    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> touches pages: two 4 KiB pages.</summary>
    private const int PageLeadBytes = 8192;

    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> prefetches lines where it does.</summary>
    private const int LineLeadBytes = 2048;

    /// <summary>
    /// Whether <see cref="PrefetchAhead"/> prefetches every cache line (Intel) or touches each page (others): the
    /// better of the two differs by CPU family in both directions (docs/benchmarks.md, "Decode prefetch").
    /// </summary>
    internal static readonly bool PrefetchLines = IsGenuineIntel();

    /// <summary>F16 rows widened to float32 on this thread (.NET exposes no vcvtph2ps); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_widened;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MatVecRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        int columns = w.Columns;
        float[]? widened = null;
        if (w.Type == TensorDType.F16)
        {
            widened = t_widened;
            if (widened is null || widened.Length < 2 * columns)
            {
                widened = t_widened = new float[2 * columns];
            }
        }

        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);
            int r = rowStart;
            // A batch of decoding sequences: two rows at a time against up to four tokens, so each x load serves both
            // rows. Four tokens' x at 6144 columns is 96 KiB, past L1, and rereading it per row was what held back
            // the batched step (docs/benchmarks.md). Blocks start on even rows, so the pairing is the same on any thread.
            if (tokens > 1)
            {
                for (; r + 1 < rowEnd; r += 2)
                {
                    byte* row0 = w.Row(r);
                    byte* row1 = row0 + w.RowStride;
                    PrefetchAhead(row0, 2 * w.RowStride, end);
                    TensorDType type = w.Type;
                    if (type == TensorDType.F16)
                    {
                        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row0, 2 * columns), new Span<float>(pWidened, 2 * columns));
                        row0 = (byte*)pWidened;
                        row1 = (byte*)(pWidened + columns);
                        type = TensorDType.F32;
                    }

                    for (int t = 0; t < tokens; t += 4)
                    {
                        TwoRows(type, Math.Min(4, tokens - t), row0, row1, x + (long)t * columns, columns, path, y + (long)t * w.Rows + r, w.Rows);
                    }
                }
            }

            for (; r < rowEnd; r++)
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

                for (int t = 0; t < tokens; t++)
                {
                    y[(long)t * w.Rows + r] = Dot(type, row, x + (long)t * columns, columns, path);
                }
            }
        }
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

    private static void TwoRows(TensorDType type, int tokens, byte* row0, byte* row1, float* x, int columns, KernelPath path, float* y, long yStride)
    {
        bool bf16 = type == TensorDType.BF16;
        switch (path)
        {
            case KernelPath.Avx512 when bf16: TwoRows<Width512, Vector512<float>, Bf16>(tokens, row0, row1, x, columns, y, yStride); break;
            case KernelPath.Avx512: TwoRows<Width512, Vector512<float>, F32>(tokens, row0, row1, x, columns, y, yStride); break;
            case KernelPath.Avx2 when bf16: TwoRows<Width256, Vector256<float>, Bf16>(tokens, row0, row1, x, columns, y, yStride); break;
            case KernelPath.Avx2: TwoRows<Width256, Vector256<float>, F32>(tokens, row0, row1, x, columns, y, yStride); break;
            case KernelPath.Portable when bf16: TwoRows<Width128, Vector128<float>, Bf16>(tokens, row0, row1, x, columns, y, yStride); break;
            case KernelPath.Portable: TwoRows<Width128, Vector128<float>, F32>(tokens, row0, row1, x, columns, y, yStride); break;
            default: throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path");
        }
    }

    private static void TwoRows<TWidth, TVector, TLoad>(int tokens, byte* row0, byte* row1, float* x, int columns, float* y, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        switch (tokens)
        {
            case 1: TwoRows<TWidth, TVector, TLoad, OneToken>(row0, row1, x, columns, y, yStride); break;
            case 2: TwoRows<TWidth, TVector, TLoad, TwoTokens>(row0, row1, x, columns, y, yStride); break;
            case 3: TwoRows<TWidth, TVector, TLoad, ThreeTokens>(row0, row1, x, columns, y, yStride); break;
            default: TwoRows<TWidth, TVector, TLoad, FourTokens>(row0, row1, x, columns, y, yStride); break;
        }
    }

    // Two rows against one to four tokens (x rows columns apart): each weight vector is loaded and widened once for
    // every token, each x vector once for both rows. Up to eight independent FMA chains, one per row and token, hide
    // the latency; TTokens is a constant in each compiled copy, so the unused chains vanish.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoRows<TWidth, TVector, TLoad, TTokens>(byte* row0, byte* row1, float* x, int columns, float* y, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
        where TTokens : struct, ITokenCount
    {
        float* x0 = x, x1 = x + columns, x2 = x + 2 * columns, x3 = x + 3 * columns;
        TVector a0 = default, a1 = default, a2 = default, a3 = default;
        TVector b0 = default, b1 = default, b2 = default, b3 = default;
        int i = 0;
        for (; i <= columns - TWidth.Count; i += TWidth.Count)
        {
            TVector w0 = TWidth.LoadWeights<TLoad>(row0, i);
            TVector w1 = TWidth.LoadWeights<TLoad>(row1, i);
            TVector v = TWidth.Load(x0 + i);
            a0 = TWidth.MultiplyAdd(w0, v, a0);
            b0 = TWidth.MultiplyAdd(w1, v, b0);
            if (TTokens.Count > 1)
            {
                v = TWidth.Load(x1 + i);
                a1 = TWidth.MultiplyAdd(w0, v, a1);
                b1 = TWidth.MultiplyAdd(w1, v, b1);
            }

            if (TTokens.Count > 2)
            {
                v = TWidth.Load(x2 + i);
                a2 = TWidth.MultiplyAdd(w0, v, a2);
                b2 = TWidth.MultiplyAdd(w1, v, b2);
            }

            if (TTokens.Count > 3)
            {
                v = TWidth.Load(x3 + i);
                a3 = TWidth.MultiplyAdd(w0, v, a3);
                b3 = TWidth.MultiplyAdd(w1, v, b3);
            }
        }

        y[0] = TWidth.Sum(a0) + Tail<TLoad>(row0, x0, i, columns);
        y[1] = TWidth.Sum(b0) + Tail<TLoad>(row1, x0, i, columns);
        if (TTokens.Count > 1)
        {
            y[yStride] = TWidth.Sum(a1) + Tail<TLoad>(row0, x1, i, columns);
            y[yStride + 1] = TWidth.Sum(b1) + Tail<TLoad>(row1, x1, i, columns);
        }

        if (TTokens.Count > 2)
        {
            y[2 * yStride] = TWidth.Sum(a2) + Tail<TLoad>(row0, x2, i, columns);
            y[2 * yStride + 1] = TWidth.Sum(b2) + Tail<TLoad>(row1, x2, i, columns);
        }

        if (TTokens.Count > 3)
        {
            y[3 * yStride] = TWidth.Sum(a3) + Tail<TLoad>(row0, x3, i, columns);
            y[3 * yStride + 1] = TWidth.Sum(b3) + Tail<TLoad>(row1, x3, i, columns);
        }
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
