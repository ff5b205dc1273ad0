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
}

/// <summary>The float32 vector operations of one width (the runtime's own ISimdVector is not public in .NET 10).</summary>
internal unsafe interface IVectorWidth<TVector>
    where TVector : struct
{
    static abstract int Count { get; }

    static abstract TVector Load(float* source);

    static abstract TVector LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad;

    static abstract TVector Broadcast(float value);

    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector addend);

    static abstract TVector Add(TVector a, TVector b);

    static abstract float Sum(TVector vector);

    static abstract void Store(TVector vector, float* destination);
}

/// <summary>AVX-512 with FMA.</summary>
internal readonly unsafe struct Width512 : IVectorWidth<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load512(row, column);

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
    public static void Store(Vector512<float> vector, float* destination) => vector.Store(destination);
}

/// <summary>AVX2 with FMA.</summary>
internal readonly unsafe struct Width256 : IVectorWidth<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load256(row, column);

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
    public static void Store(Vector256<float> vector, float* destination) => vector.Store(destination);
}

/// <summary>Vector128 only, for any CPU: a fused multiply-add where the hardware has one.</summary>
internal readonly unsafe struct Width128 : IVectorWidth<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadWeights<TLoad>(byte* row, int column)
        where TLoad : struct, IWeightLoad => TLoad.Load128(row, column);

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
    public static void Store(Vector128<float> vector, float* destination) => vector.Store(destination);
}

/// <summary>A token count as a struct type parameter: a kernel over up to four tokens is compiled once per count.</summary>
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
