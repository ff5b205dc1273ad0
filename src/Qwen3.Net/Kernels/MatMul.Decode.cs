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
    /// <summary>How far ahead of the row being read <see cref="PrefetchPagesAhead"/> touches pages: two 4 KiB pages.</summary>
    private const int PageLeadBytes = 8192;

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
            if (widened is null || widened.Length < columns)
            {
                widened = t_widened = new float[columns];
            }
        }

        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.Row(r);
                PrefetchPagesAhead(row, w.RowStride, end);
                TensorDType type = w.Type;
                if (type == TensorDType.F16)
                {
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, columns), new Span<float>(pWidened, columns));
                    row = (byte*)pWidened;
                    type = TensorDType.F32;
                }

                // Four tokens share each weight load (a batch of decoding sequences); further groups reread the row from L1.
                int t = 0;
                for (; t <= tokens - 4; t += 4)
                {
                    Dot4(type, row, x + (long)t * columns, columns, path, y + (long)t * w.Rows + r, w.Rows);
                }

                for (; t < tokens; t++)
                {
                    y[(long)t * w.Rows + r] = Dot(type, row, x + (long)t * columns, columns, path);
                }
            }
        }
    }

    /// <summary>
    /// Touches the first two lines of every 4 KiB page that lies <see cref="PageLeadBytes"/> ahead of the row about to
    /// be read, up to <paramref name="end"/>. The hardware prefetchers stop at each page boundary and take a while to
    /// pick up the next page, and a 2048-column BF16 row is exactly one page, so the stream used to wait for DRAM at
    /// every row; a touch per page two pages early gets each page's prefetch going before the kernel arrives. Decode,
    /// 2 threads, alternated in one minute: 13.1–14.8 against 11.5–12.3 t/s (docs/benchmarks.md). Prefetching every
    /// line ahead instead was 8–22% slower (more instructions, same pages).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchPagesAhead(byte* row, long length, byte* end)
    {
        if (!Sse.IsSupported)
        {
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

    private static void Dot4(TensorDType type, byte* row, float* x, int columns, KernelPath path, float* y, long yStride)
    {
        bool bf16 = type == TensorDType.BF16;
        switch (path)
        {
            case KernelPath.Avx512 when bf16: Dot4<Width512, Vector512<float>, Bf16>(row, x, columns, y, yStride); break;
            case KernelPath.Avx512: Dot4<Width512, Vector512<float>, F32>(row, x, columns, y, yStride); break;
            case KernelPath.Avx2 when bf16: Dot4<Width256, Vector256<float>, Bf16>(row, x, columns, y, yStride); break;
            case KernelPath.Avx2: Dot4<Width256, Vector256<float>, F32>(row, x, columns, y, yStride); break;
            case KernelPath.Portable when bf16: Dot4<Width128, Vector128<float>, Bf16>(row, x, columns, y, yStride); break;
            case KernelPath.Portable: Dot4<Width128, Vector128<float>, F32>(row, x, columns, y, yStride); break;
            default: throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path");
        }
    }

    // One row against four tokens' x (consecutive rows of x, columns apart): each weight vector is loaded and widened
    // once for the four. Two accumulators per token make eight independent FMA chains, enough to hide the latency.
    // Each sum is reduced in the same order as Dot's, so a token's result does not depend on the batch it is in.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4<TWidth, TVector, TLoad>(byte* row, float* x, int columns, float* y, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        float* x0 = x, x1 = x + columns, x2 = x + 2 * columns, x3 = x + 3 * columns;
        TVector a0 = default, a1 = default, a2 = default, a3 = default;
        TVector b0 = default, b1 = default, b2 = default, b3 = default;
        TVector c0 = default, c1 = default, c2 = default, c3 = default;
        TVector d0 = default, d1 = default, d2 = default, d3 = default;
        int i = 0;
        for (; i <= columns - 4 * TWidth.Count; i += 4 * TWidth.Count)
        {
            TVector w = TWidth.LoadWeights<TLoad>(row, i);
            a0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i), a0);
            a1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i), a1);
            a2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i), a2);
            a3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i), a3);
            w = TWidth.LoadWeights<TLoad>(row, i + TWidth.Count);
            b0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + TWidth.Count), b0);
            b1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + TWidth.Count), b1);
            b2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + TWidth.Count), b2);
            b3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + TWidth.Count), b3);
            w = TWidth.LoadWeights<TLoad>(row, i + 2 * TWidth.Count);
            c0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + 2 * TWidth.Count), c0);
            c1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + 2 * TWidth.Count), c1);
            c2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + 2 * TWidth.Count), c2);
            c3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + 2 * TWidth.Count), c3);
            w = TWidth.LoadWeights<TLoad>(row, i + 3 * TWidth.Count);
            d0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i + 3 * TWidth.Count), d0);
            d1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i + 3 * TWidth.Count), d1);
            d2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i + 3 * TWidth.Count), d2);
            d3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i + 3 * TWidth.Count), d3);
        }

        for (; i <= columns - TWidth.Count; i += TWidth.Count)
        {
            TVector w = TWidth.LoadWeights<TLoad>(row, i);
            a0 = TWidth.MultiplyAdd(w, TWidth.Load(x0 + i), a0);
            a1 = TWidth.MultiplyAdd(w, TWidth.Load(x1 + i), a1);
            a2 = TWidth.MultiplyAdd(w, TWidth.Load(x2 + i), a2);
            a3 = TWidth.MultiplyAdd(w, TWidth.Load(x3 + i), a3);
        }

        y[0] = TWidth.Sum(TWidth.Add(TWidth.Add(a0, b0), TWidth.Add(c0, d0))) + Tail<TLoad>(row, x0, i, columns);
        y[yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a1, b1), TWidth.Add(c1, d1))) + Tail<TLoad>(row, x1, i, columns);
        y[2 * yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a2, b2), TWidth.Add(c2, d2))) + Tail<TLoad>(row, x2, i, columns);
        y[3 * yStride] = TWidth.Sum(TWidth.Add(TWidth.Add(a3, b3), TWidth.Add(c3, d3))) + Tail<TLoad>(row, x3, i, columns);
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
