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

    /// <summary>The scale of each 32-bit lane of a vector starting at quant <paramref name="value"/>, from one float per 32-quant block.</summary>
    static abstract TFloats BlockScales(float* blockScales, int value);

    static abstract TFloats Broadcast(float value);

    static abstract TFloats Multiply(TFloats a, TFloats b);

    /// <summary>float(sums)·scales + accumulator.</summary>
    static abstract TFloats MultiplyAdd(TInts sums, TFloats scales, TFloats accumulator);

    static abstract float Sum(TFloats vector);

    /// <summary>The scale of each 16-bit lane of a vector starting at quant <paramref name="value"/>, from up to 16 group scales of 2^groupShift quants each.</summary>
    static abstract TShorts SpreadScales(Vector256<short> groupScales, int value, int groupShift);

    static abstract int SumInts(TInts vector);

    /// <summary>Σ a·b over 16 shorts (each product and pair sum within int32).</summary>
    static abstract int DotShorts(Vector256<short> a, short* b);

    /// <summary>The sums of four vectors, in the lanes of one.</summary>
    static abstract Vector128<int> SumInts4(TInts a, TInts b, TInts c, TInts d);

    /// <summary><see cref="DotShorts"/> of <paramref name="a"/> with four vectors of 16 shorts, in the lanes of one.</summary>
    static abstract Vector128<int> DotShorts4(Vector256<short> a, short* b0, short* b1, short* b2, short* b3);
}

/// <summary>AVX-512BW: vpmaddubsw + vpmaddwd (.NET 10 exposes no 512-bit VNNI).</summary>
internal readonly unsafe struct Int8Width512 : IInt8Width<Vector512<byte>, Vector512<short>, Vector512<int>, Vector512<float>>
{
    public static int Count => 64;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> LoadActivations(sbyte* source) => Vector512.Load((byte*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load512(block, value);

    // No vpsignb at 512 bits: the activations are negated where the weight is negative, under a mask.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotSigned(Vector512<int> accumulator, Vector512<byte> weights, Vector512<byte> activations)
    {
        Vector512<sbyte> w = weights.AsSByte(), a = activations.AsSByte();
        Vector512<sbyte> signed = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -a, a);
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), signed);
        return accumulator + Avx512BW.MultiplyAddAdjacent(pairs, Vector512<short>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotUnsignedScaled(Vector512<int> accumulator, Vector512<byte> weights, Vector512<byte> activations, Vector512<short> scales) =>
        accumulator + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(weights, activations.AsSByte()), scales);

    // Two block scales spread over the two halves by one permute: Vector512.Create of two broadcasts went through the stack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> BlockScales(float* blockScales, int value) =>
        Avx512F.PermuteVar16x32(Vector512.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(blockScales + (value >> 5))).AsSingle(), Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<int> sums, Vector512<float> scales, Vector512<float> accumulator) =>
        Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), scales, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> vector) => Vector512.Sum(vector);

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
    public static int DotShorts(Vector256<short> a, short* b) => Int8Width256.DotShorts(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector512<int> a, Vector512<int> b, Vector512<int> c, Vector512<int> d) =>
        Int8Width256.SumInts4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a, short* b0, short* b1, short* b2, short* b3) =>
        Int8Width256.DotShorts4(a, b0, b1, b2, b3);
}

/// <summary>AVX2: vpsignb + vpmaddubsw + vpmaddwd.</summary>
internal readonly unsafe struct Int8Width256 : IInt8Width<Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>
{
    public static int Count => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadActivations(sbyte* source) => Vector256.Load((byte*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load256(block, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotSigned(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations) =>
        accumulator + Avx2.MultiplyAddAdjacent(SignedPairs(weights, activations), Vector256<short>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotUnsignedScaled(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations, Vector256<short> scales) =>
        accumulator + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(weights, activations.AsSByte()), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BlockScales(float* blockScales, int value) => Vector256.Create(blockScales[value >> 5]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<int> sums, Vector256<float> scales, Vector256<float> accumulator) =>
        Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), scales, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> vector) => Vector256.Sum(vector);

    /// <summary>|w| as unsigned bytes and a with w's sign: the form vpmaddubsw (unsigned × signed) needs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> SignedPairs(Vector256<byte> weights, Vector256<byte> activations) =>
        Avx2.MultiplyAddAdjacent(Avx2.Abs(weights.AsSByte()), Avx2.Sign(activations.AsSByte(), weights.AsSByte()));

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
    public static int DotShorts(Vector256<short> a, short* b) => Vector256.Sum(Avx2.MultiplyAddAdjacent(a, Vector256.Load(b)));

    // Two rounds of pairwise adds leave each 128-bit half holding its share of the four sums, in order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d)
    {
        Vector256<int> sums = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a, b), Avx2.HorizontalAdd(c, d));
        return sums.GetLower() + sums.GetUpper();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a, short* b0, short* b1, short* b2, short* b3) =>
        SumInts4(
            Avx2.MultiplyAddAdjacent(a, Vector256.Load(b0)), Avx2.MultiplyAddAdjacent(a, Vector256.Load(b1)),
            Avx2.MultiplyAddAdjacent(a, Vector256.Load(b2)), Avx2.MultiplyAddAdjacent(a, Vector256.Load(b3)));
}

/// <summary>AVX2 with AVX-VNNI: vpdpbusd and vpdpwssd fuse the widening multiply-adds and the accumulation.</summary>
internal readonly unsafe struct Int8Width256Vnni : IInt8Width<Vector256<byte>, Vector256<short>, Vector256<int>, Vector256<float>>
{
    public static int Count => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadActivations(sbyte* source) => Int8Width256.LoadActivations(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> LoadWeights<TLoad>(byte* block, int value)
        where TLoad : struct, IQuantLoad => TLoad.Load256(block, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotSigned(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations) =>
        AvxVnni.MultiplyWideningAndAdd(accumulator, Avx2.Abs(weights.AsSByte()), Avx2.Sign(activations.AsSByte(), weights.AsSByte()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotUnsignedScaled(Vector256<int> accumulator, Vector256<byte> weights, Vector256<byte> activations, Vector256<short> scales) =>
        AvxVnni.MultiplyWideningAndAdd(accumulator, Avx2.MultiplyAddAdjacent(weights, activations.AsSByte()), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BlockScales(float* blockScales, int value) => Int8Width256.BlockScales(blockScales, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<int> sums, Vector256<float> scales, Vector256<float> accumulator) =>
        Int8Width256.MultiplyAdd(sums, scales, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> vector) => Vector256.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> SpreadScales(Vector256<short> groupScales, int value, int groupShift) =>
        Int8Width256.SpreadScales(groupScales, value, groupShift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SumInts(Vector256<int> vector) => Vector256.Sum(vector);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DotShorts(Vector256<short> a, short* b) => Int8Width256.DotShorts(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> SumInts4(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d) =>
        Int8Width256.SumInts4(a, b, c, d);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotShorts4(Vector256<short> a, short* b0, short* b1, short* b2, short* b3) =>
        Int8Width256.DotShorts4(a, b0, b1, b2, b3);
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
    public static Vector128<float> BlockScales(float* blockScales, int value) => Vector128.Create(blockScales[value >> 5]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<int> sums, Vector128<float> scales, Vector128<float> accumulator) =>
        Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(sums), scales, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> vector) => Vector128.Sum(vector);

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
    public static Vector128<int> DotShorts4(Vector256<short> a, short* b0, short* b1, short* b2, short* b3) =>
        Vector128.Create(DotShorts(a, b0), DotShorts(a, b1), DotShorts(a, b2), DotShorts(a, b3));
}
