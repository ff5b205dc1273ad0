using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels.Quantized;

// The integer dot products of one vector width, as struct type parameters (like IVectorWidth for the float kernels):
// the quantized kernels are written once over these and compiled per width. Lane layout is the same at every width:
// a 16-bit lane holds the products of two neighbouring bytes and a 32-bit lane of four, so a vector of per-lane
// scales lines up with the quants whatever the width.
/// <summary>The int8 operations of one vector width; TBytes is Count bytes, TShorts/TInts/TFloats the same bits as 16/32-bit lanes.</summary>
internal unsafe interface IInt8Width<TBytes, TShorts, TInts, TFloats>
    where TBytes : struct
    where TShorts : struct
    where TInts : struct
    where TFloats : struct
{
    /// <summary>Quants per vector.</summary>
    static abstract int Count { get; }

    static abstract TBytes LoadActivations(sbyte* source);

    /// <summary>Count quants of a weight row or super-block, starting at quant <paramref name="value"/>.</summary>
    static abstract TBytes LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad;

    /// <summary>acc + the products of signed weights and signed activations, four bytes to each 32-bit lane.</summary>
    static abstract TInts DotSigned(TInts accumulator, TBytes weights, TBytes activations);

    /// <summary>acc + Σ scale·u·a: unsigned weights (≤ 63) by signed activations, each byte pair weighted by its 16-bit scale.</summary>
    static abstract TInts DotUnsignedScaled(TInts accumulator, TBytes weights, TBytes activations, TShorts scales);

    /// <summary>
    /// The exact integer dot products Σ w·a of the four 32-quant blocks of a row from quant <paramref name="value"/>
    /// (a multiple of 128), one block per lane: what <see cref="QuantizedReference"/> scales and sums block by block.
    /// <paramref name="offsets"/> holds the four blocks' −128·Σa, for a width that sums the weights biased to unsigned.
    /// </summary>
    static abstract Vector128<int> BlockDots<TLoad>(byte* row, int value, sbyte* activations, int* offsets)
        where TLoad : struct, ISmallBlockLoad;

    /// <summary>
    /// <see cref="BlockDots"/> of four (or two or three, <typeparamref name="TTokens"/>) tokens' activations, the weights
    /// loaded (and signed or biased) once for all; the sums of tokens past the count are zero.
    /// </summary>
    static abstract void BlockDots4<TLoad, TTokens>(
        byte* row, int value, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, int* o0, int* o1, int* o2, int* o3,
        out Vector128<int> d0, out Vector128<int> d1, out Vector128<int> d2, out Vector128<int> d3)
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount;

    /// <summary>The scale of each 16-bit lane of a vector starting at quant <paramref name="value"/>, from up to 16 group scales of 2^groupShift quants each.</summary>
    static abstract TShorts SpreadScales(Vector256<short> groupScales, int value, int groupShift);

    static abstract int SumInts(TInts vector);

    /// <summary>Σ a·b over 16 shorts (each product and pair sum within int32).</summary>
    static abstract int DotShorts(Vector256<short> a, short* b);

    /// <summary>The sums of four vectors, in the lanes of one.</summary>
    static abstract Vector128<int> SumInts4(TInts a, TInts b, TInts c, TInts d);

    /// <summary><see cref="DotShorts"/> of four pairs, in the lanes of one.</summary>
    static abstract Vector128<int> DotShorts4(Vector256<short> a0, short* b0, Vector256<short> a1, short* b1, Vector256<short> a2, short* b2, Vector256<short> a3, short* b3);
}

/// <summary>
/// The extra operations of the prompt tile (<see cref="QuantizedMatMul"/>'s panels), where each 32-bit lane holds four
/// consecutive quants of one weight row: the dot products then sum exactly the four bytes of a lane, as vpmaddubsw +
/// vpmaddwd and vpdpbusd do (the Vector128 width sums other bytes together, so it has no tile).
/// </summary>
internal unsafe interface IInt8Tile<TBytes, TShorts, TInts, TFloats> : IInt8Width<TBytes, TShorts, TInts, TFloats>
    where TBytes : struct
    where TShorts : struct
    where TInts : struct
    where TFloats : struct
{
    /// <summary>Whether <see cref="DotUnsigned"/> is exact for any unsigned bytes (vpdpbusd), not only where each pair of products fits a short.</summary>
    static abstract bool ExactUnsignedBytes { get; }

    /// <summary>acc + the products of unsigned weights and signed activations, four bytes to each 32-bit lane.</summary>
    static abstract TInts DotUnsigned(TInts accumulator, TBytes weights, TBytes activations);

    /// <summary>The int at <paramref name="source"/> in every lane.</summary>
    static abstract TInts BroadcastInt(int* source);

    static abstract TBytes LoadBytes(byte* source);

    /// <summary>Four bytes in every 32-bit lane: one token's activations for four columns.</summary>
    static abstract TBytes BroadcastQuad(sbyte* source);

    /// <summary>Count / 2 shorts, two per 32-bit lane.</summary>
    static abstract TShorts LoadPairs(int* source);

    /// <summary>Two shorts in every 32-bit lane.</summary>
    static abstract TShorts BroadcastPair(short* source);

    /// <summary>The products of unsigned weights and signed activations, each pair summed into a short (vpmaddubsw, saturating).</summary>
    static abstract TShorts MultiplyBytes(TBytes weights, TBytes activations);

    static abstract TShorts AddShorts(TShorts a, TShorts b);

    /// <summary>acc + the products of each lane's two pairs of shorts, summed (vpmaddwd).</summary>
    static abstract TInts MultiplyAddPairs(TInts accumulator, TShorts a, TShorts b);

    static abstract TFloats LoadFloats(float* source);

    static abstract void Store(TFloats vector, float* destination);

    static abstract TFloats Broadcast(float value);

    /// <summary>The lanes converted to float, each rounded to nearest as a scalar (float)int is.</summary>
    static abstract TFloats ToSingle(TInts vector);

    static abstract TFloats Add(TFloats a, TFloats b);

    static abstract TFloats Subtract(TFloats a, TFloats b);

    static abstract TFloats Multiply(TFloats a, TFloats b);
}

/// <summary>AVX-512BW: vpmaddubsw + vpmaddwd (.NET 10 exposes no 512-bit VNNI).</summary>
internal readonly unsafe struct Int8Width512 : IInt8Tile<Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>>
{
    public static int Count => 64;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> LoadActivations(sbyte* source) => Vector512.Load((byte*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load512(block, value);

    // The prompt tile's form: the compare feeds the select directly, as a mask register (routing it through
    // DotMagnitudes made Q8_0 prompts about 19% slower).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotSigned(Vector512<int> accumulator, Vector512<byte> weights, Vector512<byte> activations) =>
        accumulator + SignedProducts(weights.AsSByte(), activations.AsSByte());

    /// <summary>Σ w·a of each four bytes: the weights' sign moved onto the activations by a select under the compare's mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SignedProducts(Vector512<sbyte> w, Vector512<sbyte> a)
    {
        Vector512<sbyte> signed = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -a, a);
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), signed), Vector512<short>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotUnsignedScaled(Vector512<int> accumulator, Vector512<byte> weights, Vector512<byte> activations, Vector512<short> scales) =>
        accumulator + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(weights, activations.AsSByte()), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> BlockDots<TLoad>(byte* row, int value, sbyte* activations, int* offsets)
        where TLoad : struct, ISmallBlockLoad
    {
        if (UnsignedBlocks.FitShorts<TLoad>())
        {
            return UnsignedDots<TLoad>(Unsigned<TLoad>(row, value), Unsigned<TLoad>(row, value + 64), (byte*)activations, offsets);
        }

        Vector512<sbyte> w0 = TLoad.Load512(row, value).AsSByte(), w1 = TLoad.Load512(row, value + 64).AsSByte();
        return BlockReduction.Sums(SignedProducts(w0, Vector512.Load(activations)), SignedProducts(w1, Vector512.Load(activations + 64)));
    }

    /// <summary>Two blocks from <paramref name="value"/> as unsigned bytes (<see cref="ISmallBlockLoad.Unsigned256"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Unsigned<TLoad>(byte* row, int value)
        where TLoad : struct, ISmallBlockLoad => Halves.Combine(TLoad.Unsigned256(row, value), TLoad.Unsigned256(row, value + 32));

    /// <summary>Four blocks' Σ w·a from their unsigned quants: Σ (w + bias)·a less bias·Σa (<see cref="UnsignedBlocks.Offsets"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> UnsignedDots<TLoad>(Vector512<byte> u0, Vector512<byte> u1, byte* a, int* offsets)
        where TLoad : struct, ISmallBlockLoad =>
        BlockReduction.Sums(DotUnsigned(default, u0, Vector512.Load(a)), DotUnsigned(default, u1, Vector512.Load(a + 64)))
        + UnsignedBlocks.Offsets<TLoad>(offsets);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void BlockDots4<TLoad, TTokens>(
        byte* row, int value, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, int* o0, int* o1, int* o2, int* o3,
        out Vector128<int> d0, out Vector128<int> d1, out Vector128<int> d2, out Vector128<int> d3)
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (UnsignedBlocks.FitShorts<TLoad>())
        {
            Vector512<byte> b0 = Unsigned<TLoad>(row, value), b1 = Unsigned<TLoad>(row, value + 64);
            d0 = UnsignedDots<TLoad>(b0, b1, (byte*)a0, o0);
            d1 = UnsignedDots<TLoad>(b0, b1, (byte*)a1, o1);
            d2 = TTokens.Count > 2 ? UnsignedDots<TLoad>(b0, b1, (byte*)a2, o2) : default;
            d3 = TTokens.Count > 3 ? UnsignedDots<TLoad>(b0, b1, (byte*)a3, o3) : default;
            return;
        }

        Vector512<sbyte> w0 = TLoad.Load512(row, value).AsSByte(), w1 = TLoad.Load512(row, value + 64).AsSByte();
        Vector512<byte> u0 = Avx512BW.Abs(w0), u1 = Avx512BW.Abs(w1);
        Vector512<sbyte> n0 = Vector512.LessThan(w0, Vector512<sbyte>.Zero), n1 = Vector512.LessThan(w1, Vector512<sbyte>.Zero);
        d0 = BlockDots(u0, n0, u1, n1, (byte*)a0);
        d1 = BlockDots(u0, n0, u1, n1, (byte*)a1);
        d2 = TTokens.Count > 2 ? BlockDots(u0, n0, u1, n1, (byte*)a2) : default;
        d3 = TTokens.Count > 3 ? BlockDots(u0, n0, u1, n1, (byte*)a3) : default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> BlockDots(Vector512<byte> u0, Vector512<sbyte> negative0, Vector512<byte> u1, Vector512<sbyte> negative1, byte* activations)
    {
        return BlockReduction.Sums(DotMagnitudes(u0, negative0, Vector512.Load(activations)), DotMagnitudes(u1, negative1, Vector512.Load(activations + 64)));
    }

    // No vpsignb at 512 bits: the activations are negated where the weight is negative (all ones in negative), under a mask.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> DotMagnitudes(Vector512<byte> magnitudes, Vector512<sbyte> negative, Vector512<byte> activations)
    {
        Vector512<sbyte> a = activations.AsSByte();
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(magnitudes, Vector512.ConditionalSelect(negative, -a, a));
        return Avx512BW.MultiplyAddAdjacent(pairs, Vector512<short>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> SpreadScales(Vector256<short> groupScales, int value, int groupShift)
    {
        Vector512<short> spread = groupShift == 5
            ? Vector512.Create((short)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
            : Vector512.Create((short)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        return Avx512BW.PermuteVar32x16(groupScales.ToVector512Unsafe(), spread + Vector512.Create((short)(value >> groupShift)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SumInts(Vector512<int> vector) => Vector512.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotShorts(Vector256<short> a, short* b) => BlockReduction.DotShorts(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector512<int> a, Vector512<int> b, Vector512<int> c, Vector512<int> d) =>
        BlockReduction.Sums(
            Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10),
            Avx512F.Shuffle4x128(c, d, 0b01_00_01_00) + Avx512F.Shuffle4x128(c, d, 0b11_10_11_10));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a0, short* b0, Vector256<short> a1, short* b1, Vector256<short> a2, short* b2, Vector256<short> a3, short* b3) =>
        BlockReduction.DotShorts4(a0, b0, a1, b1, a2, b2, a3, b3);

    public static bool ExactUnsignedBytes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotUnsigned(Vector512<int> accumulator, Vector512<byte> weights, Vector512<byte> activations) =>
        accumulator + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(weights, activations.AsSByte()), Vector512<short>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> BroadcastInt(int* source) => Vector512.Create(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> LoadBytes(byte* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> BroadcastQuad(sbyte* source) => Vector512.Create(Unsafe.ReadUnaligned<int>(source)).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> LoadPairs(int* source) => Vector512.Load(source).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> BroadcastPair(short* source) => Vector512.Create(Unsafe.ReadUnaligned<int>(source)).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> MultiplyBytes(Vector512<byte> weights, Vector512<byte> activations) => Avx512BW.MultiplyAddAdjacent(weights, activations.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> AddShorts(Vector512<short> a, Vector512<short> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> MultiplyAddPairs(Vector512<int> accumulator, Vector512<short> a, Vector512<short> b) =>
        accumulator + Avx512BW.MultiplyAddAdjacent(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadFloats(float* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> vector, float* destination) => vector.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<int> vector) => Vector512.ConvertToSingle(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
}

/// <summary>The two widening multiply-adds of the AVX2 width: <see cref="Maddubs"/> or <see cref="AvxVnniDot"/>.</summary>
internal interface IInt8Multiply256
{
    /// <summary>acc + Σ u·s over the four bytes of each 32-bit lane (|sums of pairs| must fit a short unless <see cref="ExactBytes"/>).</summary>
    static abstract Vector256<int> DotBytes(Vector256<int> accumulator, Vector256<byte> unsigned, Vector256<sbyte> signed);

    /// <summary>Whether <see cref="DotBytes"/> is exact for any bytes (no 16-bit intermediate).</summary>
    static abstract bool ExactBytes { get; }

    /// <summary>acc + Σ a·b over the two shorts of each 32-bit lane.</summary>
    static abstract Vector256<int> DotShorts(Vector256<int> accumulator, Vector256<short> a, Vector256<short> b);
}

/// <summary>AVX2: vpmaddubsw + vpmaddwd.</summary>
internal readonly struct Maddubs : IInt8Multiply256
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotBytes(Vector256<int> accumulator, Vector256<byte> unsigned, Vector256<sbyte> signed) =>
        accumulator + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(unsigned, signed), Vector256<short>.One);

    public static bool ExactBytes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotShorts(Vector256<int> accumulator, Vector256<short> a, Vector256<short> b) =>
        accumulator + Avx2.MultiplyAddAdjacent(a, b);
}

/// <summary>AVX-VNNI: vpdpbusd and vpdpwssd fuse the widening multiply-adds and the accumulation.</summary>
internal readonly struct AvxVnniDot : IInt8Multiply256
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotBytes(Vector256<int> accumulator, Vector256<byte> unsigned, Vector256<sbyte> signed) =>
        AvxVnni.MultiplyWideningAndAdd(accumulator, unsigned, signed);

    public static bool ExactBytes => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotShorts(Vector256<int> accumulator, Vector256<short> a, Vector256<short> b) =>
        AvxVnni.MultiplyWideningAndAdd(accumulator, a, b);
}

/// <summary>AVX2 with the widening multiply-adds of <typeparamref name="TMultiply"/>; vpsignb gives the signed products their sign.</summary>
internal readonly unsafe struct Int8Width256<TMultiply> : IInt8Tile<Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>
    where TMultiply : struct, IInt8Multiply256
{
    public static int Count => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadActivations(sbyte* source) => Vector256.Load((byte*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load256(block, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotSigned(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations) =>
        DotMagnitudes(accumulator, Avx2.Abs(weights.AsSByte()), weights.AsSByte(), activations);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotUnsignedScaled(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations, Vector256<short> scales) =>
        TMultiply.DotShorts(accumulator, Avx2.MultiplyAddAdjacent(weights, activations.AsSByte()), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> BlockDots<TLoad>(byte* row, int value, sbyte* activations, int* offsets)
        where TLoad : struct, ISmallBlockLoad
    {
        if (TakesUnsigned<TLoad>())
        {
            return BiasedDots<TLoad>(TLoad.Unsigned256(row, value), TLoad.Unsigned256(row, value + 32), TLoad.Unsigned256(row, value + 64), TLoad.Unsigned256(row, value + 96), (byte*)activations, offsets);
        }

        Vector256<sbyte> w0 = TLoad.Load256(row, value).AsSByte(), w1 = TLoad.Load256(row, value + 32).AsSByte();
        Vector256<sbyte> w2 = TLoad.Load256(row, value + 64).AsSByte(), w3 = TLoad.Load256(row, value + 96).AsSByte();
        return BlockDots(w0, w1, w2, w3, Avx2.Abs(w0), Avx2.Abs(w1), Avx2.Abs(w2), Avx2.Abs(w3), (byte*)activations);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void BlockDots4<TLoad, TTokens>(
        byte* row, int value, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, int* o0, int* o1, int* o2, int* o3,
        out Vector128<int> d0, out Vector128<int> d1, out Vector128<int> d2, out Vector128<int> d3)
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        if (TakesUnsigned<TLoad>())
        {
            Vector256<byte> b0 = TLoad.Unsigned256(row, value), b1 = TLoad.Unsigned256(row, value + 32);
            Vector256<byte> b2 = TLoad.Unsigned256(row, value + 64), b3 = TLoad.Unsigned256(row, value + 96);
            d0 = BiasedDots<TLoad>(b0, b1, b2, b3, (byte*)a0, o0);
            d1 = BiasedDots<TLoad>(b0, b1, b2, b3, (byte*)a1, o1);
            d2 = TTokens.Count > 2 ? BiasedDots<TLoad>(b0, b1, b2, b3, (byte*)a2, o2) : default;
            d3 = TTokens.Count > 3 ? BiasedDots<TLoad>(b0, b1, b2, b3, (byte*)a3, o3) : default;
            return;
        }

        Vector256<sbyte> w0 = TLoad.Load256(row, value).AsSByte(), w1 = TLoad.Load256(row, value + 32).AsSByte();
        Vector256<sbyte> w2 = TLoad.Load256(row, value + 64).AsSByte(), w3 = TLoad.Load256(row, value + 96).AsSByte();

        Vector256<byte> u0 = Avx2.Abs(w0), u1 = Avx2.Abs(w1), u2 = Avx2.Abs(w2), u3 = Avx2.Abs(w3);
        d0 = BlockDots(w0, w1, w2, w3, u0, u1, u2, u3, (byte*)a0);
        d1 = BlockDots(w0, w1, w2, w3, u0, u1, u2, u3, (byte*)a1);
        d2 = TTokens.Count > 2 ? BlockDots(w0, w1, w2, w3, u0, u1, u2, u3, (byte*)a2) : default;
        d3 = TTokens.Count > 3 ? BlockDots(w0, w1, w2, w3, u0, u1, u2, u3, (byte*)a3) : default;
    }

    /// <summary>
    /// Whether the blocks go through <see cref="ISmallBlockLoad.Unsigned256"/> and one multiply-add each: always exact
    /// with vpdpbusd, and with vpmaddubsw where <see cref="UnsignedBlocks.FitShorts"/>; otherwise the weights' sign is
    /// moved onto the activations.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TakesUnsigned<TLoad>()
        where TLoad : struct, ISmallBlockLoad => TMultiply.ExactBytes || UnsignedBlocks.FitShorts<TLoad>();

    /// <summary>Four blocks' Σ w·a from the biased weights: Σ (w + bias)·a less bias·Σa (<see cref="UnsignedBlocks.Offsets"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> BiasedDots<TLoad>(Vector256<byte> b0, Vector256<byte> b1, Vector256<byte> b2, Vector256<byte> b3, byte* a, int* offsets)
        where TLoad : struct, ISmallBlockLoad =>
        BlockReduction.Sums(
            TMultiply.DotBytes(default, b0, Vector256.Load(a).AsSByte()),
            TMultiply.DotBytes(default, b1, Vector256.Load(a + 32).AsSByte()),
            TMultiply.DotBytes(default, b2, Vector256.Load(a + 64).AsSByte()),
            TMultiply.DotBytes(default, b3, Vector256.Load(a + 96).AsSByte())) + UnsignedBlocks.Offsets<TLoad>(offsets);

    /// <summary>Four blocks' Σ w·a from the weights <paramref name="w0"/>… and their magnitudes <paramref name="u0"/>….</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> BlockDots(
        Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2, Vector256<sbyte> w3,
        Vector256<byte> u0, Vector256<byte> u1, Vector256<byte> u2, Vector256<byte> u3, byte* a) =>
        BlockReduction.Sums(
            DotMagnitudes(default, u0, w0, Vector256.Load(a)),
            DotMagnitudes(default, u1, w1, Vector256.Load(a + 32)),
            DotMagnitudes(default, u2, w2, Vector256.Load(a + 64)),
            DotMagnitudes(default, u3, w3, Vector256.Load(a + 96)));

    /// <summary>acc + Σ |w|·(a with w's sign): vpsignb gives each activation its weight's sign (zero where w is).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotMagnitudes(Vector256<int> accumulator, Vector256<byte> magnitudes, Vector256<sbyte> weights, Vector256<byte> activations) =>
        TMultiply.DotBytes(accumulator, magnitudes, Avx2.Sign(activations.AsSByte(), weights));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> SpreadScales(Vector256<short> groupScales, int value, int groupShift)
    {
        int group = value >> groupShift;
        return groupShift == 5
            ? Vector256.Create(groupScales.GetElement(group))
            : Vector256.Create(Vector128.Create(groupScales.GetElement(group)), Vector128.Create(groupScales.GetElement(group + 1)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SumInts(Vector256<int> vector) => Vector256.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotShorts(Vector256<short> a, short* b) => BlockReduction.DotShorts(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d) => BlockReduction.Sums(a, b, c, d);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a0, short* b0, Vector256<short> a1, short* b1, Vector256<short> a2, short* b2, Vector256<short> a3, short* b3) =>
        BlockReduction.DotShorts4(a0, b0, a1, b1, a2, b2, a3, b3);

    public static bool ExactUnsignedBytes => TMultiply.ExactBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotUnsigned(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations) =>
        TMultiply.DotBytes(accumulator, weights, activations.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BroadcastInt(int* source) => Vector256.Create(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadBytes(byte* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BroadcastQuad(sbyte* source) => Vector256.Create(Unsafe.ReadUnaligned<int>(source)).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> LoadPairs(int* source) => Vector256.Load(source).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> BroadcastPair(short* source) => Vector256.Create(Unsafe.ReadUnaligned<int>(source)).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> MultiplyBytes(Vector256<byte> weights, Vector256<byte> activations) => Avx2.MultiplyAddAdjacent(weights, activations.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> AddShorts(Vector256<short> a, Vector256<short> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyAddPairs(Vector256<int> accumulator, Vector256<short> a, Vector256<short> b) =>
        TMultiply.DotShorts(accumulator, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadFloats(float* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> vector, float* destination) => vector.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<int> vector) => Vector256.ConvertToSingle(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
}

/// <summary>
/// Vector128 only, for any CPU: the widening multiplies written out in 16-bit lanes. The 16 quants of a vector always
/// share one scale (every format's scale groups are 16 or 32 aligned quants), so the lanes are summed before scaling.
/// </summary>
internal readonly unsafe struct Int8Width128 : IInt8Width<Vector128<byte>, Vector128<short>, Vector128<int>, Vector128<float>>
{
    public static int Count => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> LoadActivations(sbyte* source) => Vector128.Load((byte*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load128(block, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotSigned(Vector128<int> accumulator, Vector128<byte> weights, Vector128<byte> activations)
    {
        (Vector128<short> wLow, Vector128<short> wHigh) = Vector128.Widen(weights.AsSByte());
        (Vector128<short> aLow, Vector128<short> aHigh) = Vector128.Widen(activations.AsSByte());
        Vector128<short> products = wLow * aLow + wHigh * aHigh; // |·| ≤ 2·128·127: fits
        (Vector128<int> low, Vector128<int> high) = Vector128.Widen(products);
        return accumulator + low + high;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotUnsignedScaled(Vector128<int> accumulator, Vector128<byte> weights, Vector128<byte> activations, Vector128<short> scales)
    {
        (Vector128<ushort> wLow, Vector128<ushort> wHigh) = Vector128.Widen(weights);
        (Vector128<short> aLow, Vector128<short> aHigh) = Vector128.Widen(activations.AsSByte());
        Vector128<short> products = wLow.AsInt16() * aLow + wHigh.AsInt16() * aHigh; // ≤ 2·63·128: fits
        (Vector128<int> low, Vector128<int> high) = Vector128.Widen(products);
        return accumulator + (low + high) * Vector128.WidenLower(scales);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> BlockDots<TLoad>(byte* row, int value, sbyte* activations, int* offsets)
        where TLoad : struct, ISmallBlockLoad
    {
        byte* a = (byte*)activations;
        return Vector128.Create(
            Vector128.Sum(DotSigned(DotSigned(default, TLoad.Load128(row, value), Vector128.Load(a)), TLoad.Load128(row, value + 16), Vector128.Load(a + 16))),
            Vector128.Sum(DotSigned(DotSigned(default, TLoad.Load128(row, value + 32), Vector128.Load(a + 32)), TLoad.Load128(row, value + 48), Vector128.Load(a + 48))),
            Vector128.Sum(DotSigned(DotSigned(default, TLoad.Load128(row, value + 64), Vector128.Load(a + 64)), TLoad.Load128(row, value + 80), Vector128.Load(a + 80))),
            Vector128.Sum(DotSigned(DotSigned(default, TLoad.Load128(row, value + 96), Vector128.Load(a + 96)), TLoad.Load128(row, value + 112), Vector128.Load(a + 112))));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void BlockDots4<TLoad, TTokens>(
        byte* row, int value, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, int* o0, int* o1, int* o2, int* o3,
        out Vector128<int> d0, out Vector128<int> d1, out Vector128<int> d2, out Vector128<int> d3)
        where TLoad : struct, ISmallBlockLoad
        where TTokens : struct, ITokenCount
    {
        d0 = BlockDots<TLoad>(row, value, a0, o0);
        d1 = BlockDots<TLoad>(row, value, a1, o1);
        d2 = TTokens.Count > 2 ? BlockDots<TLoad>(row, value, a2, o2) : default;
        d3 = TTokens.Count > 3 ? BlockDots<TLoad>(row, value, a3, o3) : default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> SpreadScales(Vector256<short> groupScales, int value, int groupShift) =>
        Vector128.Create(groupScales.GetElement(value >> groupShift));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SumInts(Vector128<int> vector) => Vector128.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotShorts(Vector256<short> a, short* b)
    {
        (Vector128<int> a0, Vector128<int> a1) = Vector128.Widen(a.GetLower());
        (Vector128<int> a2, Vector128<int> a3) = Vector128.Widen(a.GetUpper());
        (Vector128<int> b0, Vector128<int> b1) = Vector128.Widen(Vector128.Load(b));
        (Vector128<int> b2, Vector128<int> b3) = Vector128.Widen(Vector128.Load(b + 8));
        return Vector128.Sum(a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector128<int> a, Vector128<int> b, Vector128<int> c, Vector128<int> d) =>
        Vector128.Create(Vector128.Sum(a), Vector128.Sum(b), Vector128.Sum(c), Vector128.Sum(d));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a0, short* b0, Vector256<short> a1, short* b1, Vector256<short> a2, short* b2, Vector256<short> a3, short* b3) =>
        Vector128.Create(DotShorts(a0, b0), DotShorts(a1, b1), DotShorts(a2, b2), DotShorts(a3, b3));
}

/// <summary>The exact integer reductions the AVX2 and AVX-512 widths share, on 256-bit vectors.</summary>
internal static unsafe class BlockReduction
{
    /// <summary>[Σ b0, Σ b1, Σ b2, Σ b3]: two rounds of vphaddd leave each vector's two 128-bit halves, added last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sums(Vector256<int> b0, Vector256<int> b1, Vector256<int> b2, Vector256<int> b3)
    {
        Vector256<int> halves = Avx2.HorizontalAdd(Avx2.HorizontalAdd(b0, b1), Avx2.HorizontalAdd(b2, b3));
        return halves.GetLower() + halves.GetUpper();
    }

    /// <summary>
    /// [Σ b0, Σ b1, Σ b2, Σ b3] of four blocks' eight lanes, two blocks to a vector (b0 in the lower half of
    /// <paramref name="b01"/>): the blocks' 128-bit quarters lined up and added, each quarter summed in place by two
    /// in-lane shuffles, and the four sums gathered (five shuffles where the 256-bit form takes nine).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sums(Vector512<int> b01, Vector512<int> b23)
    {
        Vector512<int> s = Avx512F.Shuffle4x128(b01, b23, 0b10_00_10_00) + Avx512F.Shuffle4x128(b01, b23, 0b11_01_11_01);
        s += Avx512F.Shuffle(s, 0b01_00_11_10);
        s += Avx512F.Shuffle(s, 0b10_11_00_01);
        return Avx512F.PermuteVar16x32(s, Vector512.Create(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12)).GetLower().GetLower();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotShorts(Vector256<short> a, short* b) => Vector256.Sum(Avx2.MultiplyAddAdjacent(a, Vector256.Load(b)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a0, short* b0, Vector256<short> a1, short* b1, Vector256<short> a2, short* b2, Vector256<short> a3, short* b3) =>
        Sums(
            Avx2.MultiplyAddAdjacent(a0, Vector256.Load(b0)), Avx2.MultiplyAddAdjacent(a1, Vector256.Load(b1)),
            Avx2.MultiplyAddAdjacent(a2, Vector256.Load(b2)), Avx2.MultiplyAddAdjacent(a3, Vector256.Load(b3)));
}
