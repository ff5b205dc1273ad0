using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-vector products for one or a few tokens: memory-bound, so the point is to stream each weight row once at
// full bandwidth. Four rows at a time share every x load; two accumulators per row hide the FMA latency. Every row is
// summed in the same order whichever group of four it falls in, so results do not depend on the thread split.
internal static unsafe partial class MatMul
{
    private const int GroupRows = 4;

    private const int PrefetchLines = 4;

    /// <summary>F16 rows widened to float32 on this thread (.NET exposes no vcvtph2ps); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_widened;

    private static void MatVecRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        int columns = w.Columns;
        long stride = w.RowStride;
        float[]? widened = null;
        if (w.Type == TensorDType.F16)
        {
            widened = t_widened;
            if (widened is null || widened.Length < GroupRows * columns)
            {
                widened = t_widened = new float[GroupRows * columns];
            }
        }

        float* sums = stackalloc float[GroupRows];
        fixed (float* pWidened = widened)
        {
            // A block of rows is small enough to stay in L2, so further tokens reread it from cache, not memory.
            for (int blockStart = rowStart; blockStart < rowEnd; blockStart += BlockRows)
            {
                int blockEnd = Math.Min(blockStart + BlockRows, rowEnd);
                for (int t = 0; t < tokens; t++)
                {
                    float* xt = x + (long)t * columns;
                    for (int r = blockStart; r < blockEnd; r += GroupRows)
                    {
                        int count = Math.Min(GroupRows, blockEnd - r);
                        byte* first = w.Row(r);
                        // Missing rows of a short group repeat the last real one; their sums are discarded.
                        long rowStride = count > 1 ? stride : 0;
                        long lastOffset = (count - 1) * stride;
                        TensorDType type = w.Type;
                        if (type == TensorDType.F16)
                        {
                            for (int i = 0; i < count; i++)
                            {
                                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(first + i * stride, columns), new Span<float>(pWidened + i * columns, columns));
                            }

                            first = (byte*)pWidened;
                            rowStride = count > 1 ? columns * sizeof(float) : 0;
                            lastOffset = (count - 1) * (long)columns * sizeof(float);
                            type = TensorDType.F32;
                        }

                        // A 2048-wide BF16 row is one 4 KB page, and hardware prefetchers stop at page boundaries:
                        // touching the first lines of the next group's rows starts their page walks and streams while
                        // this group is summed (decode 4–14% faster at 2 threads, interleaved A/B on 1.7B).
                        if (Sse.IsSupported && r + 2 * GroupRows <= rowEnd)
                        {
                            byte* next = w.Row(r + GroupRows);
                            for (int i = 0; i < GroupRows; i++)
                            {
                                for (int line = 0; line < PrefetchLines; line++)
                                {
                                    Sse.Prefetch0(next + i * stride + line * 64);
                                }
                            }
                        }

                        Dot4(type, first, rowStride, lastOffset, xt, columns, sums, path);
                        for (int i = 0; i < count; i++)
                        {
                            y[(long)t * w.Rows + r + i] = sums[i];
                        }
                    }
                }
            }
        }
    }

    private static void Dot4(TensorDType type, byte* first, long stride, long lastOffset, float* x, int columns, float* sums, KernelPath path)
    {
        byte* r0 = first;
        byte* r1 = first + Math.Min(stride, lastOffset);
        byte* r2 = first + Math.Min(2 * stride, lastOffset);
        byte* r3 = first + lastOffset;
        bool bf16 = type == TensorDType.BF16;
        switch (path)
        {
            case KernelPath.Avx512 when bf16:
                Dot4Avx512<Bf16>(r0, r1, r2, r3, x, columns, sums);
                break;
            case KernelPath.Avx512:
                Dot4Avx512<F32>(r0, r1, r2, r3, x, columns, sums);
                break;
            case KernelPath.Avx2 when bf16:
                Dot4Avx2<Bf16>(r0, r1, r2, r3, x, columns, sums);
                break;
            case KernelPath.Avx2:
                Dot4Avx2<F32>(r0, r1, r2, r3, x, columns, sums);
                break;
            case KernelPath.Portable when bf16:
                Dot4Portable<Bf16>(r0, r1, r2, r3, x, columns, sums);
                break;
            case KernelPath.Portable:
                Dot4Portable<F32>(r0, r1, r2, r3, x, columns, sums);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path");
        }
    }

    /// <summary>Loads weights as float32 vectors; a struct type parameter, so each kernel is compiled per element type.</summary>
    private interface IWeightLoad
    {
        static abstract Vector512<float> Load512(byte* row, int column);

        static abstract Vector256<float> Load256(byte* row, int column);

        static abstract Vector128<float> Load128(byte* row, int column);

        static abstract float Load(byte* row, int column);
    }

    /// <summary>bfloat16 is the top half of a float32: zero-extend each 16-bit lane to 32 bits and shift it up.</summary>
    private readonly struct Bf16 : IWeightLoad
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(byte* row, int column) =>
            Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + column)), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(byte* row, int column) =>
            Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)row + column)), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(byte* row, int column) =>
            Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>((ushort*)row + column)).AsUInt16()), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int column) => BFloat16.ToSingle(((ushort*)row)[column]);
    }

    private readonly struct F32 : IWeightLoad
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load512(byte* row, int column) => Vector512.Load((float*)row + column);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load256(byte* row, int column) => Vector256.Load((float*)row + column);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Load128(byte* row, int column) => Vector128.Load((float*)row + column);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load(byte* row, int column) => ((float*)row)[column];
    }

    private static void Dot4Avx512<TLoad>(byte* r0, byte* r1, byte* r2, byte* r3, float* x, int columns, float* sums)
        where TLoad : struct, IWeightLoad
    {
        Vector512<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        int c = 0;
        for (; c <= columns - 32; c += 32)
        {
            Vector512<float> xa = Vector512.Load(x + c);
            Vector512<float> xb = Vector512.Load(x + c + 16);
            a0 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r0, c), xa, a0);
            b0 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r0, c + 16), xb, b0);
            a1 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r1, c), xa, a1);
            b1 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r1, c + 16), xb, b1);
            a2 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r2, c), xa, a2);
            b2 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r2, c + 16), xb, b2);
            a3 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r3, c), xa, a3);
            b3 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r3, c + 16), xb, b3);
        }

        if (c <= columns - 16)
        {
            Vector512<float> xa = Vector512.Load(x + c);
            a0 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r0, c), xa, a0);
            a1 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r1, c), xa, a1);
            a2 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r2, c), xa, a2);
            a3 = Avx512F.FusedMultiplyAdd(TLoad.Load512(r3, c), xa, a3);
            c += 16;
        }

        sums[0] = Vector512.Sum(a0 + b0) + Tail<TLoad>(r0, x, c, columns);
        sums[1] = Vector512.Sum(a1 + b1) + Tail<TLoad>(r1, x, c, columns);
        sums[2] = Vector512.Sum(a2 + b2) + Tail<TLoad>(r2, x, c, columns);
        sums[3] = Vector512.Sum(a3 + b3) + Tail<TLoad>(r3, x, c, columns);
    }

    private static void Dot4Avx2<TLoad>(byte* r0, byte* r1, byte* r2, byte* r3, float* x, int columns, float* sums)
        where TLoad : struct, IWeightLoad
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        int c = 0;
        for (; c <= columns - 16; c += 16)
        {
            Vector256<float> xa = Vector256.Load(x + c);
            Vector256<float> xb = Vector256.Load(x + c + 8);
            a0 = Fma.MultiplyAdd(TLoad.Load256(r0, c), xa, a0);
            b0 = Fma.MultiplyAdd(TLoad.Load256(r0, c + 8), xb, b0);
            a1 = Fma.MultiplyAdd(TLoad.Load256(r1, c), xa, a1);
            b1 = Fma.MultiplyAdd(TLoad.Load256(r1, c + 8), xb, b1);
            a2 = Fma.MultiplyAdd(TLoad.Load256(r2, c), xa, a2);
            b2 = Fma.MultiplyAdd(TLoad.Load256(r2, c + 8), xb, b2);
            a3 = Fma.MultiplyAdd(TLoad.Load256(r3, c), xa, a3);
            b3 = Fma.MultiplyAdd(TLoad.Load256(r3, c + 8), xb, b3);
        }

        if (c <= columns - 8)
        {
            Vector256<float> xa = Vector256.Load(x + c);
            a0 = Fma.MultiplyAdd(TLoad.Load256(r0, c), xa, a0);
            a1 = Fma.MultiplyAdd(TLoad.Load256(r1, c), xa, a1);
            a2 = Fma.MultiplyAdd(TLoad.Load256(r2, c), xa, a2);
            a3 = Fma.MultiplyAdd(TLoad.Load256(r3, c), xa, a3);
            c += 8;
        }

        sums[0] = Vector256.Sum(a0 + b0) + Tail<TLoad>(r0, x, c, columns);
        sums[1] = Vector256.Sum(a1 + b1) + Tail<TLoad>(r1, x, c, columns);
        sums[2] = Vector256.Sum(a2 + b2) + Tail<TLoad>(r2, x, c, columns);
        sums[3] = Vector256.Sum(a3 + b3) + Tail<TLoad>(r3, x, c, columns);
    }

    private static void Dot4Portable<TLoad>(byte* r0, byte* r1, byte* r2, byte* r3, float* x, int columns, float* sums)
        where TLoad : struct, IWeightLoad
    {
        Vector128<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        int c = 0;
        for (; c <= columns - 8; c += 8)
        {
            Vector128<float> xa = Vector128.Load(x + c);
            Vector128<float> xb = Vector128.Load(x + c + 4);
            a0 = Vector128.MultiplyAddEstimate(TLoad.Load128(r0, c), xa, a0);
            b0 = Vector128.MultiplyAddEstimate(TLoad.Load128(r0, c + 4), xb, b0);
            a1 = Vector128.MultiplyAddEstimate(TLoad.Load128(r1, c), xa, a1);
            b1 = Vector128.MultiplyAddEstimate(TLoad.Load128(r1, c + 4), xb, b1);
            a2 = Vector128.MultiplyAddEstimate(TLoad.Load128(r2, c), xa, a2);
            b2 = Vector128.MultiplyAddEstimate(TLoad.Load128(r2, c + 4), xb, b2);
            a3 = Vector128.MultiplyAddEstimate(TLoad.Load128(r3, c), xa, a3);
            b3 = Vector128.MultiplyAddEstimate(TLoad.Load128(r3, c + 4), xb, b3);
        }

        if (c <= columns - 4)
        {
            Vector128<float> xa = Vector128.Load(x + c);
            a0 = Vector128.MultiplyAddEstimate(TLoad.Load128(r0, c), xa, a0);
            a1 = Vector128.MultiplyAddEstimate(TLoad.Load128(r1, c), xa, a1);
            a2 = Vector128.MultiplyAddEstimate(TLoad.Load128(r2, c), xa, a2);
            a3 = Vector128.MultiplyAddEstimate(TLoad.Load128(r3, c), xa, a3);
            c += 4;
        }

        sums[0] = Vector128.Sum(a0 + b0) + Tail<TLoad>(r0, x, c, columns);
        sums[1] = Vector128.Sum(a1 + b1) + Tail<TLoad>(r1, x, c, columns);
        sums[2] = Vector128.Sum(a2 + b2) + Tail<TLoad>(r2, x, c, columns);
        sums[3] = Vector128.Sum(a3 + b3) + Tail<TLoad>(r3, x, c, columns);
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
