using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels;

// What the kernels load and at what vector width, as struct type parameters: a loop written once over IVectorWidth and
// IWeightLoad is compiled by the JIT into one specialised copy per width and weight type, the same machine code as a
// copy written out by hand.
/// <summary>Loads weights as float32 vectors; a struct type parameter, so each kernel is compiled per element type.</summary>
internal unsafe interface IWeightLoad
{
    static abstract Vector512<float> Load512(byte* row, int column);

    static abstract Vector256<float> Load256(byte* row, int column);

    static abstract Vector128<float> Load128(byte* row, int column);

    static abstract float Load(byte* row, int column);

    /// <summary>Bytes per weight.</summary>
    static abstract int ElementBytes { get; }

    /// <summary>
    /// Whether <see cref="IVectorWidth{TVector}.LoadWeightPair"/> yields a group's even columns then its odd ones
    /// (x must then be reordered to match: <see cref="MatMul"/>'s decode layout), or its two halves in order.
    /// </summary>
    static abstract bool Interleaved { get; }

    /// <summary>
    /// The 32 weights from <paramref name="column"/> on as two vectors (<see cref="Interleaved"/> says which columns each
    /// holds); <paramref name="highHalves"/> has each lane's upper 16 bits set, the mask that leaves a BF16 pair's odd weight.
    /// </summary>
    static abstract void LoadPair512(byte* row, nint column, Vector512<uint> highHalves, out Vector512<float> first, out Vector512<float> second);

    static abstract void LoadPair256(byte* row, nint column, Vector256<uint> highHalves, out Vector256<float> first, out Vector256<float> second);

    static abstract void LoadPair128(byte* row, nint column, Vector128<uint> highHalves, out Vector128<float> first, out Vector128<float> second);
}

/// <summary>bfloat16 is the top half of a float32: zero-extend each 16-bit lane to 32 bits and shift it up.</summary>
internal readonly unsafe struct Bf16 : IWeightLoad
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

    public static int ElementBytes => sizeof(ushort);

    /// <summary>
    /// A pair of weights per 32-bit lane: shifting the lane up 16 bits leaves the even one as a float32 and masking
    /// off its low half leaves the odd one, one operation per vector where <see cref="Load512"/> takes a shuffle and a shift.
    /// </summary>
    public static bool Interleaved => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair512(byte* row, nint column, Vector512<uint> highHalves, out Vector512<float> first, out Vector512<float> second)
    {
        Vector512<uint> pairs = Vector512.Load((uint*)((ushort*)row + column));
        first = Avx512F.ShiftLeftLogical(pairs, 16).AsSingle();
        second = Avx512F.And(pairs, highHalves).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair256(byte* row, nint column, Vector256<uint> highHalves, out Vector256<float> first, out Vector256<float> second)
    {
        Vector256<uint> pairs = Vector256.Load((uint*)((ushort*)row + column));
        first = Avx2.ShiftLeftLogical(pairs, 16).AsSingle();
        second = Avx2.And(pairs, highHalves).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair128(byte* row, nint column, Vector128<uint> highHalves, out Vector128<float> first, out Vector128<float> second)
    {
        Vector128<uint> pairs = Vector128.Load((uint*)((ushort*)row + column));
        first = Vector128.ShiftLeft(pairs, 16).AsSingle();
        second = (pairs & highHalves).AsSingle();
    }
}

internal readonly unsafe struct F32 : IWeightLoad
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, int column) => Vector512.Load((float*)row + column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, int column) => Vector256.Load((float*)row + column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(byte* row, int column) => Vector128.Load((float*)row + column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, int column) => ((float*)row)[column];

    public static int ElementBytes => sizeof(float);

    public static bool Interleaved => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair512(byte* row, nint column, Vector512<uint> highHalves, out Vector512<float> first, out Vector512<float> second)
    {
        first = Vector512.Load((float*)row + column);
        second = Vector512.Load((float*)row + column + Vector512<float>.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair256(byte* row, nint column, Vector256<uint> highHalves, out Vector256<float> first, out Vector256<float> second)
    {
        first = Vector256.Load((float*)row + column);
        second = Vector256.Load((float*)row + column + Vector256<float>.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadPair128(byte* row, nint column, Vector128<uint> highHalves, out Vector128<float> first, out Vector128<float> second)
    {
        first = Vector128.Load((float*)row + column);
        second = Vector128.Load((float*)row + column + Vector128<float>.Count);
    }
}

/// <summary>The float32 vector operations of one width (the runtime's own ISimdVector is not public in .NET 10).</summary>
internal unsafe interface IVectorWidth<TVector>
    where TVector : struct
{
    static abstract int Count { get; }

    /// <summary>Vector registers a kernel can plan to keep busy: 32 with AVX-512, 16 on x64 without it.</summary>
    static abstract int Registers { get; }

    static abstract TVector Load(float* source);

    static abstract TVector LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad;

    /// <summary>
    /// 2 · Count weights from <paramref name="column"/> on, as <see cref="IWeightLoad.Interleaved"/> describes;
    /// <paramref name="highHalves"/> is <see cref="HighHalves"/>, taken from the caller so that a loop keeps it in a
    /// register (made inside, the JIT reloaded the constant at every step).
    /// </summary>
    static abstract void LoadWeightPair<TLoad>(byte* row, nint column, TVector highHalves, out TVector first, out TVector second)
        where TLoad : struct, IWeightLoad;

    /// <summary>Each 32-bit lane's upper 16 bits set: the mask that leaves the odd weight of a BF16 pair.</summary>
    static abstract TVector HighHalves { get; }

    /// <summary>
    /// The even weight of the BF16 pair in each 32-bit lane at <paramref name="source"/>, as float32. A half of
    /// <see cref="LoadWeightPair"/>'s work with a load of its own, so that a tile short of registers keeps only one half.
    /// </summary>
    static abstract TVector LoadEvenOfPairs(float* source);

    /// <summary>The odd weight of the BF16 pair in each 32-bit lane at <paramref name="source"/>, as float32.</summary>
    static abstract TVector LoadOddOfPairs(float* source, TVector highHalves);

    static abstract TVector Broadcast(float value);

    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector addend);

    static abstract TVector Add(TVector a, TVector b);

    static abstract float Sum(TVector vector);

    /// <summary>{Σa, Σb, Σc, Σd}.</summary>
    static abstract Vector128<float> Sum4(TVector a, TVector b, TVector c, TVector d);

    static abstract void Store(TVector vector, float* destination);

    /// <summary>
    /// Reads Count × Count weights, Count columns from <paramref name="column"/> of each of Count rows, as float32, and
    /// stores column i at <paramref name="destination"/> + i · <paramref name="stride"/>: a block of a row panel transposed.
    /// </summary>
    static abstract void StoreTransposed<TLoad>(byte** rows, int column, float* destination, int stride)
        where TLoad : struct, IWeightLoad;
}

/// <summary>AVX-512 with FMA.</summary>
internal readonly unsafe struct Width512 : IVectorWidth<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;

    public static int Registers => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load512(row, column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadWeightPair<TLoad>(byte* row, nint column, Vector512<float> highHalves, out Vector512<float> first, out Vector512<float> second)
        where TLoad : struct, IWeightLoad => TLoad.LoadPair512(row, column, highHalves.AsUInt32(), out first, out second);

    public static Vector512<float> HighHalves
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(0xFFFF0000u).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadEvenOfPairs(float* source) => Avx512F.ShiftLeftLogical(Vector512.Load((uint*)source), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadOddOfPairs(float* source, Vector512<float> highHalves) => Avx512F.And(Vector512.Load((uint*)source), highHalves.AsUInt32()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> addend) =>
        Avx512F.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> vector) => Vector512.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d) =>
        HorizontalSum.Of4(a, b, c, d);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> vector, float* destination) => vector.Store(destination);

    /// <summary>
    /// Pairs of rows are interleaved, then quadruples, so that each 128-bit lane L of q_m holds column 4L + m of four
    /// rows; two rounds of 128-bit lane shuffles then gather a column's four lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTransposed<TLoad>(byte** rows, int column, float* destination, int stride)
        where TLoad : struct, IWeightLoad
    {
        Quadruple(TLoad.Load512(rows[0], column), TLoad.Load512(rows[1], column), TLoad.Load512(rows[2], column), TLoad.Load512(rows[3], column),
            out Vector512<float> a0, out Vector512<float> a1, out Vector512<float> a2, out Vector512<float> a3);
        Quadruple(TLoad.Load512(rows[4], column), TLoad.Load512(rows[5], column), TLoad.Load512(rows[6], column), TLoad.Load512(rows[7], column),
            out Vector512<float> b0, out Vector512<float> b1, out Vector512<float> b2, out Vector512<float> b3);
        Quadruple(TLoad.Load512(rows[8], column), TLoad.Load512(rows[9], column), TLoad.Load512(rows[10], column), TLoad.Load512(rows[11], column),
            out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3);
        Quadruple(TLoad.Load512(rows[12], column), TLoad.Load512(rows[13], column), TLoad.Load512(rows[14], column), TLoad.Load512(rows[15], column),
            out Vector512<float> d0, out Vector512<float> d1, out Vector512<float> d2, out Vector512<float> d3);
        Columns4(a0, b0, c0, d0, destination, stride);
        Columns4(a1, b1, c1, d1, destination + stride, stride);
        Columns4(a2, b2, c2, d2, destination + 2 * stride, stride);
        Columns4(a3, b3, c3, d3, destination + 3 * stride, stride);
    }

    /// <summary>Lane L of q_m = {a[4L + m], b[4L + m], c[4L + m], d[4L + m]}.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quadruple(
        Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d,
        out Vector512<float> q0, out Vector512<float> q1, out Vector512<float> q2, out Vector512<float> q3)
    {
        Vector512<double> ab0 = Avx512F.UnpackLow(a, b).AsDouble(), ab1 = Avx512F.UnpackHigh(a, b).AsDouble();
        Vector512<double> cd0 = Avx512F.UnpackLow(c, d).AsDouble(), cd1 = Avx512F.UnpackHigh(c, d).AsDouble();
        q0 = Avx512F.UnpackLow(ab0, cd0).AsSingle();
        q1 = Avx512F.UnpackHigh(ab0, cd0).AsSingle();
        q2 = Avx512F.UnpackLow(ab1, cd1).AsSingle();
        q3 = Avx512F.UnpackHigh(ab1, cd1).AsSingle();
    }

    /// <summary>
    /// From four q_m of rows 0–3, 4–7, 8–11 and 12–15, columns m, 4 + m, 8 + m and 12 + m, at o, o + 4 · stride,
    /// o + 8 · stride and o + 12 · stride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* o, int stride)
    {
        Vector512<float> ab01 = Avx512F.Shuffle4x128(a, b, 0b01_00_01_00), cd01 = Avx512F.Shuffle4x128(c, d, 0b01_00_01_00);
        Vector512<float> ab23 = Avx512F.Shuffle4x128(a, b, 0b11_10_11_10), cd23 = Avx512F.Shuffle4x128(c, d, 0b11_10_11_10);
        Avx512F.Shuffle4x128(ab01, cd01, 0b10_00_10_00).Store(o);
        Avx512F.Shuffle4x128(ab01, cd01, 0b11_01_11_01).Store(o + 4 * stride);
        Avx512F.Shuffle4x128(ab23, cd23, 0b10_00_10_00).Store(o + 8 * stride);
        Avx512F.Shuffle4x128(ab23, cd23, 0b11_01_11_01).Store(o + 12 * stride);
    }
}

/// <summary>AVX2 with FMA.</summary>
internal readonly unsafe struct Width256 : IVectorWidth<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;

    public static int Registers => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load256(row, column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadWeightPair<TLoad>(byte* row, nint column, Vector256<float> highHalves, out Vector256<float> first, out Vector256<float> second)
        where TLoad : struct, IWeightLoad => TLoad.LoadPair256(row, column, highHalves.AsUInt32(), out first, out second);

    public static Vector256<float> HighHalves
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(0xFFFF0000u).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadEvenOfPairs(float* source) => Avx2.ShiftLeftLogical(Vector256.Load((uint*)source), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadOddOfPairs(float* source, Vector256<float> highHalves) => Avx2.And(Vector256.Load((uint*)source), highHalves.AsUInt32()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> addend) =>
        Fma.MultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> vector) => Vector256.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d) =>
        Vector128.Create(Sum(a), Sum(b), Sum(c), Sum(d));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> vector, float* destination) => vector.Store(destination);

    /// <summary>Pairs of rows interleaved, then quadruples, then the 128-bit halves swapped across.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTransposed<TLoad>(byte** rows, int column, float* destination, int stride)
        where TLoad : struct, IWeightLoad
    {
        Vector256<float> a0 = TLoad.Load256(rows[0], column), a1 = TLoad.Load256(rows[1], column), a2 = TLoad.Load256(rows[2], column), a3 = TLoad.Load256(rows[3], column);
        Vector256<float> a4 = TLoad.Load256(rows[4], column), a5 = TLoad.Load256(rows[5], column), a6 = TLoad.Load256(rows[6], column), a7 = TLoad.Load256(rows[7], column);
        Vector256<float> t0 = Avx.UnpackLow(a0, a1), t1 = Avx.UnpackHigh(a0, a1), t2 = Avx.UnpackLow(a2, a3), t3 = Avx.UnpackHigh(a2, a3);
        Vector256<float> t4 = Avx.UnpackLow(a4, a5), t5 = Avx.UnpackHigh(a4, a5), t6 = Avx.UnpackLow(a6, a7), t7 = Avx.UnpackHigh(a6, a7);
        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE), s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE), s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(s0, s4, 0x20).Store(destination);
        Avx.Permute2x128(s1, s5, 0x20).Store(destination + stride);
        Avx.Permute2x128(s2, s6, 0x20).Store(destination + 2 * stride);
        Avx.Permute2x128(s3, s7, 0x20).Store(destination + 3 * stride);
        Avx.Permute2x128(s0, s4, 0x31).Store(destination + 4 * stride);
        Avx.Permute2x128(s1, s5, 0x31).Store(destination + 5 * stride);
        Avx.Permute2x128(s2, s6, 0x31).Store(destination + 6 * stride);
        Avx.Permute2x128(s3, s7, 0x31).Store(destination + 7 * stride);
    }
}

/// <summary>Vector128 only, for any CPU: a fused multiply-add where the hardware has one.</summary>
internal readonly unsafe struct Width128 : IVectorWidth<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;

    public static int Registers => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load128(row, column);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadWeightPair<TLoad>(byte* row, nint column, Vector128<float> highHalves, out Vector128<float> first, out Vector128<float> second)
        where TLoad : struct, IWeightLoad => TLoad.LoadPair128(row, column, highHalves.AsUInt32(), out first, out second);

    public static Vector128<float> HighHalves
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector128.Create(0xFFFF0000u).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadEvenOfPairs(float* source) => Vector128.ShiftLeft(Vector128.Load((uint*)source), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadOddOfPairs(float* source, Vector128<float> highHalves) => (Vector128.Load((uint*)source) & highHalves.AsUInt32()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> addend) =>
        Vector128.MultiplyAddEstimate(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> vector) => Vector128.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector128<float> a, Vector128<float> b, Vector128<float> c, Vector128<float> d) =>
        Vector128.Create(Sum(a), Sum(b), Sum(c), Sum(d));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> vector, float* destination) => vector.Store(destination);

    /// <summary>One element at a time: Vector128 has no two-vector shuffle that every CPU runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTransposed<TLoad>(byte** rows, int column, float* destination, int stride)
        where TLoad : struct, IWeightLoad
    {
        for (int i = 0; i < Count; i++)
        {
            for (int j = 0; j < Count; j++)
            {
                destination[i * stride + j] = TLoad.Load(rows[j], column + i);
            }
        }
    }
}

/// <summary>
/// A small count (tokens, query rows) as a struct type parameter: a kernel over up to eight is compiled once per count.
/// </summary>
internal interface ITokenCount
{
    static abstract int Count { get; }
}

internal readonly struct OneToken : ITokenCount
{
    public static int Count => 1;
}

internal readonly struct TwoTokens : ITokenCount
{
    public static int Count => 2;
}

internal readonly struct ThreeTokens : ITokenCount
{
    public static int Count => 3;
}

internal readonly struct FourTokens : ITokenCount
{
    public static int Count => 4;
}

internal readonly struct EightTokens : ITokenCount
{
    public static int Count => 8;
}
