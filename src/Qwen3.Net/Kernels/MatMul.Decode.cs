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
    /// <summary>F16 rows widened to float32 on this thread (.NET exposes no vcvtph2ps); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_widened;

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
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.Row(r);
                TensorDType type = w.Type;
                if (type == TensorDType.F16)
                {
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, columns), new Span<float>(pWidened, columns));
                    row = (byte*)pWidened;
                    type = TensorDType.F32;
                }

                // Further tokens reread the row from L1.
                for (int t = 0; t < tokens; t++)
                {
                    y[(long)t * w.Rows + r] = Dot(type, row, x + (long)t * columns, columns, path);
                }
            }
        }
    }

    private static float Dot(TensorDType type, byte* row, float* x, int columns, KernelPath path)
    {
        bool bf16 = type == TensorDType.BF16;
        return path switch
        {
            KernelPath.Avx512 when bf16 => DotAvx512<Bf16>(row, x, columns),
            KernelPath.Avx512 => DotAvx512<F32>(row, x, columns),
            KernelPath.Avx2 when bf16 => DotAvx2<Bf16>(row, x, columns),
            KernelPath.Avx2 => DotAvx2<F32>(row, x, columns),
            KernelPath.Portable when bf16 => DotPortable<Bf16>(row, x, columns),
            KernelPath.Portable => DotPortable<F32>(row, x, columns),
            _ => throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path"),
        };
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

    // Four accumulators hide the FMA latency; the x loads hit L1.
    private static float DotAvx512<TLoad>(byte* row, float* x, int columns)
        where TLoad : struct, IWeightLoad
    {
        Vector512<float> a = default, b = default, c = default, d = default;
        int i = 0;
        for (; i <= columns - 64; i += 64)
        {
            a = Avx512F.FusedMultiplyAdd(TLoad.Load512(row, i), Vector512.Load(x + i), a);
            b = Avx512F.FusedMultiplyAdd(TLoad.Load512(row, i + 16), Vector512.Load(x + i + 16), b);
            c = Avx512F.FusedMultiplyAdd(TLoad.Load512(row, i + 32), Vector512.Load(x + i + 32), c);
            d = Avx512F.FusedMultiplyAdd(TLoad.Load512(row, i + 48), Vector512.Load(x + i + 48), d);
        }

        for (; i <= columns - 16; i += 16)
        {
            a = Avx512F.FusedMultiplyAdd(TLoad.Load512(row, i), Vector512.Load(x + i), a);
        }

        return Vector512.Sum((a + b) + (c + d)) + Tail<TLoad>(row, x, i, columns);
    }

    private static float DotAvx2<TLoad>(byte* row, float* x, int columns)
        where TLoad : struct, IWeightLoad
    {
        Vector256<float> a = default, b = default, c = default, d = default;
        int i = 0;
        for (; i <= columns - 32; i += 32)
        {
            a = Fma.MultiplyAdd(TLoad.Load256(row, i), Vector256.Load(x + i), a);
            b = Fma.MultiplyAdd(TLoad.Load256(row, i + 8), Vector256.Load(x + i + 8), b);
            c = Fma.MultiplyAdd(TLoad.Load256(row, i + 16), Vector256.Load(x + i + 16), c);
            d = Fma.MultiplyAdd(TLoad.Load256(row, i + 24), Vector256.Load(x + i + 24), d);
        }

        for (; i <= columns - 8; i += 8)
        {
            a = Fma.MultiplyAdd(TLoad.Load256(row, i), Vector256.Load(x + i), a);
        }

        return Vector256.Sum((a + b) + (c + d)) + Tail<TLoad>(row, x, i, columns);
    }

    private static float DotPortable<TLoad>(byte* row, float* x, int columns)
        where TLoad : struct, IWeightLoad
    {
        Vector128<float> a = default, b = default, c = default, d = default;
        int i = 0;
        for (; i <= columns - 16; i += 16)
        {
            a = Vector128.MultiplyAddEstimate(TLoad.Load128(row, i), Vector128.Load(x + i), a);
            b = Vector128.MultiplyAddEstimate(TLoad.Load128(row, i + 4), Vector128.Load(x + i + 4), b);
            c = Vector128.MultiplyAddEstimate(TLoad.Load128(row, i + 8), Vector128.Load(x + i + 8), c);
            d = Vector128.MultiplyAddEstimate(TLoad.Load128(row, i + 12), Vector128.Load(x + i + 12), d);
        }

        for (; i <= columns - 4; i += 4)
        {
            a = Vector128.MultiplyAddEstimate(TLoad.Load128(row, i), Vector128.Load(x + i), a);
        }

        return Vector128.Sum((a + b) + (c + d)) + Tail<TLoad>(row, x, i, columns);
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
