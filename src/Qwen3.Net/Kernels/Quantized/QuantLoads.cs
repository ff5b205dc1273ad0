using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// Unpacks the quants of one format to a byte per quant, in value order, at each vector width (the only part of a
/// kernel that knows the bit layout). <c>value</c> counts quants from the start of the row (Q8_0, Q4_0) or of the
/// super-block (K formats), and is a multiple of the width.
/// </summary>
internal unsafe interface IQuantLoad
{
    static abstract Vector512<byte> Load512(byte* block, int value);

    static abstract Vector256<byte> Load256(byte* block, int value);

    static abstract Vector128<byte> Load128(byte* block, int value);
}

/// <summary>A 32-quant block format of signed quants with an f16 scale first (Q8_0, Q4_0, Q5_0): x = d·q.</summary>
internal unsafe interface ISmallBlockLoad : IQuantLoad
{
    static abstract int BlockBytes { get; }

    /// <summary>The signed quant <paramref name="value"/> of a row, one at a time (the 32-quant tail of a 64-wide row).</summary>
    static abstract int Quant(byte* row, int value);

    /// <summary>
    /// The 32 quants of the block at <paramref name="value"/> as unsigned bytes q + (128 &gt;&gt; <see cref="BiasShift"/>),
    /// for one exact vpdpbusd per block: what unpacking leaves without its last step (Q4_0's nibbles are q + 8).
    /// </summary>
    static abstract Vector256<byte> Unsigned256(byte* block, int value);

    /// <summary>128 over the bias of <see cref="Unsigned256"/>, as a shift: Q8_0 0 (128), Q5_0 3 (16), Q4_0 4 (8).</summary>
    static abstract int BiasShift { get; }
}

/// <summary>The kernels' rules for the unsigned form of the 32-quant blocks (<see cref="ISmallBlockLoad.Unsigned256"/>).</summary>
internal static unsafe class UnsignedBlocks
{
    /// <summary>
    /// Whether vpmaddubsw takes <typeparamref name="TLoad"/>'s unsigned quants exactly, without a sign fix: biased by
    /// at most 16 (Q4_0, Q5_0) they are at most 31, so each pair of products with an activation stays within a short.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool FitShorts<TLoad>()
        where TLoad : struct, ISmallBlockLoad => TLoad.BiasShift >= 3;

    /// <summary>
    /// Four blocks' −bias·Σa, the term that turns Σ (w + bias)·a into Σ w·a: the activations' −128·Σa per block
    /// (<paramref name="offsets"/>) shifted right by the format's <see cref="ISmallBlockLoad.BiasShift"/>, exactly, as
    /// it is a multiple of 128.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Offsets<TLoad>(int* offsets)
        where TLoad : struct, ISmallBlockLoad => Vector128.ShiftRightArithmetic(Vector128.Load(offsets), TLoad.BiasShift);
}

/// <summary>
/// A 256-quant super-block of unsigned quants (≤ 63) in groups with integer scales (Q2_K to Q6_K): x = d·sc·q − dmin·m.
/// </summary>
internal unsafe interface ISuperBlockLoad : IQuantLoad
{
    static abstract int BlockBytes { get; }

    /// <summary>log2 of the quants per scale: 5 (32) for Q4_K/Q5_K, 4 (16) for Q2_K, Q3_K and Q6_K.</summary>
    static abstract int GroupShift { get; }

    /// <summary>The largest unsigned quant: 3, 7, 15, 31 or 63.</summary>
    static abstract int MaxQuant { get; }

    /// <summary>
    /// The block's d and dmin, its integer group scales (8 or 16, in the first lanes), and the weight of each of the 16
    /// activation sums of 16 quants in the offset term, so the block's dot product is
    /// d·Σ sc·q·a − dmin·Σ weight·sum (Q6_K's −32 offset is written as weights 32·sc with dmin = d, Q3_K's −4 as 4·sc).
    /// </summary>
    static abstract void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin);

    /// <summary><see cref="Header"/>'s group scales and sum weights alone.</summary>
    static abstract void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights);

    /// <summary>Where in a block the f16 d of <see cref="Header"/> lies.</summary>
    static abstract int DOffset { get; }

    /// <summary>Where in a block the f16 dmin of <see cref="Header"/> lies (Q3_K, Q6_K: at d, as their dmin is d).</summary>
    static abstract int DMinOffset { get; }

    /// <summary>
    /// <see cref="Header"/>'s group scales and sum weights of the four super-blocks from <paramref name="block"/>, without
    /// d and dmin, for the one-token kernel's four super-blocks at a time (Q4_K and Q5_K unpack the four headers together).
    /// </summary>
    static abstract void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3);

    /// <summary>
    /// The d of the four super-blocks from <paramref name="block"/> in lanes 0–3 and their dmin in lanes 4–7, as
    /// <see cref="Header"/> gives them: eight halves converted at once, where one at a time each is a dozen operations and a branch.
    /// </summary>
    static abstract Vector256<float> Multipliers4(byte* block);

    /// <summary>
    /// Whether the offset term is part of the block's integer sum (Q6_K's −32 and Q3_K's −4, scaled by d as the reference does) rather
    /// than a separate min scaled by dmin (Q4_K, Q5_K).
    /// </summary>
    static abstract bool OffsetIsMin { get; }
}

internal readonly unsafe struct Q8_0Load : ISmallBlockLoad
{
    public static int BlockBytes => 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quant(byte* row, int value) => (sbyte)row[34 * (value / 32) + 2 + value % 32];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value)
    {
        byte* quants = block + 34 * (value >> 5) + 2;
        return Halves.Combine(Vector256.Load(quants), Vector256.Load(quants + 34));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) => Vector256.Load(block + 34 * (value / 32) + 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unsigned256(byte* block, int value) => Load256(block, value) ^ Vector256.Create((byte)0x80);

    public static int BiasShift => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value) => Vector128.Load(block + 34 * (value / 32) + 2 + value % 32);
}

/// <summary>Q4_0: the low nibbles are quants 0–15 of the block, the high nibbles 16–31; returned as q − 8.</summary>
internal readonly unsafe struct Q4_0Load : ISmallBlockLoad
{
    public static int BlockBytes => 18;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quant(byte* row, int value) => ((row[18 * (value / 32) + 2 + value % 16] >> (4 * (value % 32 / 16))) & 0xF) - 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value) =>
        Halves.Combine(Block(block + 18 * (value >> 5)), Block(block + 18 * ((value >> 5) + 1))) - Vector512.Create((byte)8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) => Block(block + 18 * (value / 32)) - Vector256.Create((byte)8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unsigned256(byte* block, int value) => Block(block + 18 * (value / 32));

    public static int BiasShift => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value)
    {
        Vector128<byte> packed = Vector128.Load(block + 18 * (value / 32) + 2);
        Vector128<byte> nibbles = value % 32 == 0 ? packed & Vector128.Create((byte)0xF) : Vector128.ShiftRightLogical(packed, 4);
        return nibbles - Vector128.Create((byte)8);
    }

    /// <summary>The block's 32 nibbles, q + 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Block(byte* block)
    {
        Vector128<byte> packed = Vector128.Load(block + 2);
        return Vector256.Create(packed & Vector128.Create((byte)0xF), Vector128.ShiftRightLogical(packed, 4));
    }
}

/// <summary>
/// Q5_0: d, then the 32 fifth bits as a little-endian word (bit j for quant j), then Q4_0's nibbles (low: quants
/// 0–15, high: 16–31). Unpacked, nibble | fifth bit · 16 is q + 16.
/// </summary>
internal readonly unsafe struct Q5_0Load : ISmallBlockLoad
{
    public static int BlockBytes => 22;

    public static int BiasShift => 3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quant(byte* row, int value)
    {
        byte* block = row + 22 * (value / 32);
        int j = value % 32;
        int nibble = (block[6 + j % 16] >> (4 * (j / 16))) & 0xF;
        return (nibble | (int)((Unsafe.ReadUnaligned<uint>(block + 2) >> j) & 1) << 4) - 16;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value) =>
        Halves.Combine(Unsigned256(block, value), Unsigned256(block, value + 32)) - Vector512.Create((byte)16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) => Unsigned256(block, value) - Vector256.Create((byte)16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value) =>
        Half(block + 22 * (value / 32), high: value % 32 != 0) - Vector128.Create((byte)16);

    // The 256-bit kernels run on AVX2 and AVX-512 only.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unsigned256(byte* block, int value)
    {
        byte* b = block + 22 * (value / 32);

        // The 16 nibble bytes in both halves, shifted by 0 in the lower and 4 in the upper; the word in every lane,
        // its byte i / 8 moved to byte i.
        Vector256<uint> both = Avx2.BroadcastVector128ToVector256((uint*)(b + 6));
        Vector256<byte> shifted = Avx2.ShiftRightLogicalVariable(both, Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte();
        if (Avx512Vbmi.VL.IsSupported)
        {
            // Byte i takes the word's bits from i − 4 (mod 64, the word twice in each 64-bit lane), so its bit 4 is bit i.
            Vector256<byte> fifth = Avx512Vbmi.VL.MultiShift(
                Vector256.Create((byte)60, 61, 62, 63, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27),
                Avx2.BroadcastScalarToVector256((uint*)(b + 2)).AsUInt64()) & Vector256.Create((byte)0x10);
            return Vector256.ConditionalSelect(Vector256.Create((byte)0xF), shifted, fifth);
        }

        Vector256<byte> nibbles = shifted & Vector256.Create((byte)0xF);
        Vector256<byte> spread = Avx2.Shuffle(
            Avx2.BroadcastScalarToVector256((uint*)(b + 2)).AsByte(),
            Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        Vector256<byte> bit = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        return nibbles | (Vector256.Equals(spread & bit, bit) & Vector256.Create((byte)0x10));
    }

    /// <summary>Quants 0–15 of a block, or 16–31 (<paramref name="high"/>), as q + 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Half(byte* block, bool high)
    {
        Vector128<byte> packed = Vector128.Load(block + 6);
        Vector128<byte> nibbles = high ? Vector128.ShiftRightLogical(packed, 4) : packed & Vector128.Create((byte)0xF);
        Vector128<byte> spread = Vector128.Shuffle(
            Vector128.Create(Unsafe.ReadUnaligned<ushort>(block + (high ? 4 : 2))).AsByte(),
            Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        Vector128<byte> bit = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        return nibbles | (Vector128.Equals(spread & bit, bit) & Vector128.Create((byte)0x10));
    }
}

/// <summary>
/// Q4_K: d, dmin, 12 bytes of 6-bit scales and mins, then 128 bytes of nibbles in 32-byte chunks, each chunk holding
/// 64 quants: the low nibbles the first 32, the high nibbles the next 32.
/// </summary>
internal readonly unsafe struct Q4_KLoad : ISuperBlockLoad
{
    public static int BlockBytes => 144;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value) => Nibbles.Both(block + 16 + 32 * (value / 64));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) => Nibbles.Select(Vector256.Load(block + 16 + 32 * (value / 64)), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value) => Nibbles.Select(Vector128.Load(block + 16 + 32 * (value / 64) + value % 32), value);

    public static int GroupShift => 5;

    public static int MaxQuant => 15;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin) =>
        Nibbles.HeaderK4(block, out groupScales, out sumWeights, out d, out dmin);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights) =>
        Nibbles.ScalesK4(block, out groupScales, out sumWeights);

    public static int DOffset => 0;

    public static int DMinOffset => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3) =>
        Nibbles.ScalesK4x4(block, BlockBytes, out scales0, out weights0, out scales1, out weights1, out scales2, out weights2, out scales3, out weights3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block) => Nibbles.Multipliers4(block, BlockBytes);

    public static bool OffsetIsMin => false;

    /// <summary>Quants 128·<paramref name="k"/> … + 127 in <see cref="QuantizedActivations.NibbleQuants"/>' order, as <see cref="Nibbles.Pairs"/> gives them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pairs512(byte* block, int k, out Vector512<byte> low, out Vector512<byte> high) =>
        Nibbles.Pairs(block + 16 + 64 * k, out low, out high);
}

/// <summary>Q5_K: as Q4_K with 32 bytes of high bits before the nibbles; bit i of byte l is the fifth bit of quant 32·i + l.</summary>
internal readonly unsafe struct Q5_KLoad : ISuperBlockLoad
{
    public static int BlockBytes => 176;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value)
    {
        Vector256<byte> packed = Vector256.Load(block + 48 + 32 * (value / 64));
        Vector256<byte> high = Vector256.Load(block + 16);
        int shift = value / 32;
        return Halves.Combine(
            (packed & Vector256.Create((byte)0xF)) | FifthBit(high, shift),
            Vector256.ShiftRightLogical(packed, 4) | FifthBit(high, shift + 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) =>
        Nibbles.Select(Vector256.Load(block + 48 + 32 * (value / 64)), value) | FifthBit(Vector256.Load(block + 16), value / 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value)
    {
        Vector128<byte> high = Vector128.Load(block + 16 + value % 32);
        Vector128<byte> fifth = Vector128.ShiftLeft(Vector128.ShiftRightLogical(high, value / 32) & Vector128<byte>.One, 4);
        return Nibbles.Select(Vector128.Load(block + 48 + 32 * (value / 64) + value % 32), value) | fifth;
    }

    public static int GroupShift => 5;

    public static int MaxQuant => 31;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin) =>
        Nibbles.HeaderK4(block, out groupScales, out sumWeights, out d, out dmin);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights) =>
        Nibbles.ScalesK4(block, out groupScales, out sumWeights);

    public static int DOffset => 0;

    public static int DMinOffset => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3) =>
        Nibbles.ScalesK4x4(block, BlockBytes, out scales0, out weights0, out scales1, out weights1, out scales2, out weights2, out scales3, out weights3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block) => Nibbles.Multipliers4(block, BlockBytes);

    public static bool OffsetIsMin => false;

    /// <summary>As <see cref="Q4_KLoad.Pairs512"/>, each quant with its fifth bit (bit 4k, 4k + 2 of the low nibbles' halves, 4k + 1, 4k + 3 of the high's).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pairs512(byte* block, int k, out Vector512<byte> low, out Vector512<byte> high)
    {
        Nibbles.Pairs(block + 48 + 64 * k, out low, out high);
        Vector512<byte> bits = Halves.Broadcast(block + 16);
        low |= FifthBits(bits, 4 * k, 4 * k + 2);
        high |= FifthBits(bits, 4 * k + 1, 4 * k + 3);
    }

    /// <summary>Bit <paramref name="lower"/> of each byte of the lower half and bit <paramref name="upper"/> of the upper half's, moved to bit 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> FifthBits(Vector512<byte> bits, int lower, int upper)
    {
        if (Gfni.V512.IsSupported)
        {
            // Row byte 3 of the matrix (output bit 4) selects the input bit.
            ulong a = (1UL << lower) << 24, b = (1UL << upper) << 24;
            return Gfni.V512.GaloisFieldAffineTransform(bits, Vector512.Create(a, a, a, a, b, b, b, b).AsByte(), 0);
        }

        Vector512<ushort> shifts = Vector512.Create(Vector256.Create((ushort)lower), Vector256.Create((ushort)upper));
        return Vector512.ShiftLeft(Avx512BW.ShiftRightLogicalVariable(bits.AsUInt16(), shifts).AsByte() & Vector512<byte>.One, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> FifthBit(Vector256<byte> high, int shift) =>
        Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, shift) & Vector256<byte>.One, 4);
}

/// <summary>
/// Q6_K: 128 bytes of low nibbles, 64 of 2-bit high pairs, 16 signed scales, d. Each half of 128 quants has 64 low
/// bytes and 32 high bytes; quant 32·k + l of a half takes nibble k/2 of low byte l + 32·(k mod 2) and bits 2k of high byte l.
/// </summary>
internal readonly unsafe struct Q6_KLoad : ISuperBlockLoad
{
    public static int BlockBytes => 210;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value)
    {
        int half = value / 128, quarter = value % 128 / 32;
        Vector512<byte> low = Vector512.Load(block + 64 * half);
        if (Gfni.V512.IsSupported)
        {
            // Each half's pair moved to bits 4-5 by one affine bit transform (its matrix chosen per 64-bit lane), and
            // the nibble masked and merged with it by one ternary-logic operation: (low & 0xF) | pairs.
            Vector512<byte> matrices = quarter == 0
                ? Vector512.Create(PairsAt0, PairsAt0, PairsAt0, PairsAt0, PairsAt2, PairsAt2, PairsAt2, PairsAt2).AsByte()
                : Vector512.Create(PairsAt4, PairsAt4, PairsAt4, PairsAt4, PairsAt6, PairsAt6, PairsAt6, PairsAt6).AsByte();
            Vector512<byte> pairs = Gfni.V512.GaloisFieldAffineTransform(Halves.Broadcast(block + 128 + 32 * half), matrices, 0);
            Vector512<byte> nibbles = quarter == 0 ? low : Avx512BW.ShiftRightLogical(low.AsUInt16(), 4).AsByte();
            return Avx512F.TernaryLogic(nibbles, Vector512.Create((byte)0xF), pairs, 0xEA);
        }

        low = quarter == 0 ? low & Vector512.Create((byte)0xF) : Vector512.ShiftRightLogical(low, 4);

        // Both quarters' high pairs from one broadcast, each half shifted so that its pair lands on bits 4-5 (16-bit
        // shifts move each byte's own bits there, whatever they carry in from the neighbouring byte elsewhere).
        Vector512<ushort> high = Halves.Broadcast(block + 128 + 32 * half).AsUInt16();
        Vector512<ushort> top = quarter == 0
            ? Avx512BW.ShiftLeftLogicalVariable(high, Vector512.Create((ushort)4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2))
            : Avx512BW.ShiftRightLogicalVariable(high, Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2));
        return low | (top.AsByte() & Vector512.Create((byte)0x30));
    }

    /// <summary>
    /// GF(2) affine matrices (vgf2p8affineqb, as <see cref="Nibbles.LowNibble"/>) that move a byte's bits k and k + 1 to
    /// bits 4 and 5 and clear the others: row bytes 3 and 2 (output bits 4 and 5) select input bits k and k + 1.
    /// </summary>
    private const ulong PairsAt0 = 0x01020000, PairsAt2 = 0x04080000, PairsAt4 = 0x10200000, PairsAt6 = 0x40800000;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value)
    {
        int half = value / 128, quarter = value % 128 / 32;
        Vector256<byte> low = Vector256.Load(block + 64 * half + 32 * (quarter & 1));
        low = quarter < 2 ? low & Vector256.Create((byte)0xF) : Vector256.ShiftRightLogical(low, 4);
        Vector256<byte> high = Vector256.ShiftRightLogical(Vector256.Load(block + 128 + 32 * half), 2 * quarter) & Vector256.Create((byte)3);
        return low | Vector256.ShiftLeft(high, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value)
    {
        int half = value / 128, quarter = value % 128 / 32, l = value % 32;
        Vector128<byte> low = Vector128.Load(block + 64 * half + 32 * (quarter & 1) + l);
        low = quarter < 2 ? low & Vector128.Create((byte)0xF) : Vector128.ShiftRightLogical(low, 4);
        Vector128<byte> high = Vector128.ShiftRightLogical(Vector128.Load(block + 128 + 32 * half + l), 2 * quarter) & Vector128.Create((byte)3);
        return low | Vector128.ShiftLeft(high, 4);
    }

    public static int GroupShift => 4;

    public static int MaxQuant => 63;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin) =>
        SuperBlocks.Header<Q6_KLoad>(block, out groupScales, out sumWeights, out d, out dmin);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3) =>
        SuperBlocks.EachGroupScales<Q6_KLoad>(block, out scales0, out weights0, out scales1, out weights1, out scales2, out weights2, out scales3, out weights3);

    public static int DOffset => 208;

    public static int DMinOffset => 208;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights)
    {
        (Vector128<short> low, Vector128<short> high) = Vector128.Widen(Vector128.Load((sbyte*)block + 192));
        groupScales = Vector256.Create(low, high);
        sumWeights = Vector256.ShiftLeft(groupScales, 5);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block)
    {
        var bits = Vector128.Create(
            Unsafe.ReadUnaligned<ushort>(block + 208), Unsafe.ReadUnaligned<ushort>(block + 210 + 208),
            Unsafe.ReadUnaligned<ushort>(block + 420 + 208), (int)Unsafe.ReadUnaligned<ushort>(block + 630 + 208));
        return Half16.ToSingle(Vector256.Create(bits, bits));
    }

    public static bool OffsetIsMin => true;
}

/// <summary>
/// Q3_K: 32 bytes of third bits (hmask), 64 of 2-bit pairs, 12 of 6-bit scales, d. Quant v of half h (128 quants),
/// quarter k, lane l takes bits 2k of pair byte 32h + l and bit 4h + k of hmask byte l; x = d·(sc − 32)·(q − 4), so,
/// as for Q6_K, the kernels take q unsigned (0–7) and the −4 as sum weights 4·sc with dmin = d.
/// </summary>
internal readonly unsafe struct Q3_KLoad : ISuperBlockLoad
{
    public static int BlockBytes => 110;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value)
    {
        // Quarters k and k + 1 (k = 0 or 2): the low two bits as Q2_K's, the third (bit 4·half + quarter of hmask) from
        // one broadcast moved to bit 2, each 256-bit half by its own count, as TwoBitQuants does.
        int half = value / 128, quarter = value % 128 / 32;
        Vector512<ushort> third = Halves.Broadcast(block).AsUInt16();
        third = half == 0 && quarter == 0
            ? Avx512BW.ShiftLeftLogicalVariable(third, ThirdCounts0)
            : Avx512BW.ShiftRightLogicalVariable(third, half == 0 ? ThirdCounts2 : quarter == 0 ? ThirdCounts4 : ThirdCounts6);
        return TwoBitQuants.Load512(block + 32, value) | (third.AsByte() & Vector512.Create((byte)4));
    }

    // Load512's shift counts of the third bit, as TwoBitQuants' counts are.
    private static readonly Vector512<ushort> ThirdCounts0 = TwoBitQuants.Counts(2, 1), ThirdCounts2 = TwoBitQuants.Counts(0, 1);
    private static readonly Vector512<ushort> ThirdCounts4 = TwoBitQuants.Counts(2, 3), ThirdCounts6 = TwoBitQuants.Counts(4, 5);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value)
    {
        int half = value / 128, quarter = value % 128 / 32, bit = 4 * half + quarter;
        Vector256<byte> low = TwoBitQuants.Load256(block + 32, value);
        Vector256<byte> third = Vector256.Load(block);
        third = bit >= 2 ? Vector256.ShiftRightLogical(third, bit - 2) : Vector256.ShiftLeft(third, 2 - bit);
        return low | (third & Vector256.Create((byte)4));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value)
    {
        int half = value / 128, quarter = value % 128 / 32, bit = 4 * half + quarter, l = value % 32;
        Vector128<byte> low = TwoBitQuants.Load128(block + 32, value);
        Vector128<byte> third = Vector128.Load(block + l);
        third = bit >= 2 ? Vector128.ShiftRightLogical(third, bit - 2) : Vector128.ShiftLeft(third, 2 - bit);
        return low | (third & Vector128.Create((byte)4));
    }

    public static int GroupShift => 4;

    public static int MaxQuant => 7;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin) =>
        SuperBlocks.Header<Q3_KLoad>(block, out groupScales, out sumWeights, out d, out dmin);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3) =>
        SuperBlocks.EachGroupScales<Q3_KLoad>(block, out scales0, out weights0, out scales1, out weights1, out scales2, out weights2, out scales3, out weights3);

    public static int DOffset => 108;

    public static int DMinOffset => 108;

    /// <summary>
    /// The 16 scales − 32: the low four bits of scale g are nibble g / 8 of byte g % 8, the top two bits 2·(g / 4) of
    /// byte 8 + g % 4 (<see cref="QuantizedReference.ScaleQ3_K"/>); 8 + 4 bytes read, none past the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights)
    {
        ulong low = Unsafe.ReadUnaligned<ulong>(block + 96);
        uint high = Unsafe.ReadUnaligned<uint>(block + 104);
        if (Avx2.IsSupported)
        {
            // Both halves from broadcasts and per-lane shifts: the nibbles of bytes 0–7 (low for scales 0–7, high for
            // 8–15) and the top bits of bytes 8–11 (bits 2·(g / 4) for scale g), moved to bits 4–5.
            Vector128<ulong> nibbles = Avx2.ShiftRightLogicalVariable(Vector128.Create(low), Vector128.Create(0UL, 4UL)) & Vector128.Create(0x0F0F0F0F0F0F0F0FUL);
            Vector128<uint> tops = Avx2.ShiftRightLogicalVariable(Vector128.Create(high), Vector128.Create(0u, 2u, 4u, 6u)) & Vector128.Create(0x03030303u);
            Vector128<byte> scales = nibbles.AsByte() | Vector128.ShiftLeft(tops, 4).AsByte();
            groupScales = Avx2.ConvertToVector256Int16(scales.AsSByte() - Vector128.Create((sbyte)32));
        }
        else
        {
            Vector128<byte> nibbles = Vector128.Create(low & 0x0F0F0F0F0F0F0F0FUL, (low >> 4) & 0x0F0F0F0F0F0F0F0FUL).AsByte();
            Vector128<byte> tops = Vector128.ShiftLeft(Vector128.Create(high, high >> 2, high >> 4, high >> 6) & Vector128.Create(0x03030303u), 4).AsByte();
            (Vector128<short> first, Vector128<short> second) = Vector128.Widen((nibbles | tops).AsSByte() - Vector128.Create((sbyte)32));
            groupScales = Vector256.Create(first, second);
        }

        sumWeights = Vector256.ShiftLeft(groupScales, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block)
    {
        var bits = Vector128.Create(
            Unsafe.ReadUnaligned<ushort>(block + 108), Unsafe.ReadUnaligned<ushort>(block + 110 + 108),
            Unsafe.ReadUnaligned<ushort>(block + 220 + 108), (int)Unsafe.ReadUnaligned<ushort>(block + 330 + 108));
        return Half16.ToSingle(Vector256.Create(bits, bits));
    }

    public static bool OffsetIsMin => true;
}

/// <summary>
/// The 2-bit quants of Q2_K and the low two bits of Q3_K's, from where they start in the block: 32 bytes per half of
/// 128 quants, quant v of quarter k and lane l in bits 2k of byte 32·half + l.
/// </summary>
internal static unsafe class TwoBitQuants
{
    /// <summary>Quarters k and k + 1 (k = 0 or 2) from one broadcast, each 256-bit half shifted down by its own count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* quants, int value)
    {
        // 16-bit shifts move each byte's own bits into place; what they carry in from the neighbouring byte is masked off.
        Vector512<ushort> pairs = Halves.Broadcast(quants + 32 * (value / 128)).AsUInt16();
        return Avx512BW.ShiftRightLogicalVariable(pairs, value % 128 == 0 ? Counts0 : Counts2).AsByte() & Vector512.Create((byte)3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* quants, int value) =>
        Vector256.ShiftRightLogical(Vector256.Load(quants + 32 * (value / 128)), 2 * (value % 128 / 32)) & Vector256.Create((byte)3);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* quants, int value) =>
        Vector128.ShiftRightLogical(Vector128.Load(quants + 32 * (value / 128) + value % 32), 2 * (value % 128 / 32)) & Vector128.Create((byte)3);

    // Load512's shift counts, lower 16 shorts then upper: fields rather than literals, as sixteen inlined copies of
    // 32-element literals left SuperDot no inlining budget. The class is initialized before any kernel is compiled
    // (QuantizedMatMul's static constructor), so the JIT takes them as constants.
    private static readonly Vector512<ushort> Counts0 = Counts(0, 2), Counts2 = Counts(4, 6);

    /// <summary><paramref name="lower"/> in the 16 shorts of the lower half, <paramref name="upper"/> in the upper.</summary>
    public static Vector512<ushort> Counts(int lower, int upper) => Vector512.Create(Vector256.Create((ushort)lower), Vector256.Create((ushort)upper));
}

/// <summary>
/// Q2_K: 16 bytes of 4-bit scales (low) and mins (high), 64 of 2-bit quants (as <see cref="TwoBitQuants"/>), d, dmin;
/// x = d·sc·q − dmin·m per group of 16.
/// </summary>
internal readonly unsafe struct Q2_KLoad : ISuperBlockLoad
{
    public static int BlockBytes => 84;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int value) => TwoBitQuants.Load512(block + 16, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load256(byte* block, int value) => TwoBitQuants.Load256(block + 16, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load128(byte* block, int value) => TwoBitQuants.Load128(block + 16, value);

    public static int GroupShift => 4;

    public static int MaxQuant => 3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin) =>
        SuperBlocks.Header<Q2_KLoad>(block, out groupScales, out sumWeights, out d, out dmin);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales4(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3) =>
        SuperBlocks.EachGroupScales<Q2_KLoad>(block, out scales0, out weights0, out scales1, out weights1, out scales2, out weights2, out scales3, out weights3);

    public static int DOffset => 80;

    public static int DMinOffset => 82;

    /// <summary>The 16 scales (low nibbles of bytes 0–15) and the 16 mins (high nibbles), widened to shorts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GroupScales(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights)
    {
        Vector128<byte> packed = Vector128.Load(block);
        groupScales = Widen(packed & Vector128.Create((byte)0xF));
        sumWeights = Widen(Vector128.ShiftRightLogical(packed, 4));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Widen(Vector128<byte> values)
    {
        if (Avx2.IsSupported)
        {
            return Avx2.ConvertToVector256Int16(values);
        }

        (Vector128<ushort> low, Vector128<ushort> high) = Vector128.Widen(values);
        return Vector256.Create(low, high).AsInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block) => Nibbles.Multipliers4(block + DOffset, BlockBytes);

    public static bool OffsetIsMin => false;
}

/// <summary>Helpers of the <see cref="ISuperBlockLoad"/> formats that unpack their headers one super-block at a time.</summary>
internal static unsafe class SuperBlocks
{
    /// <summary>
    /// <see cref="ISuperBlockLoad.Header"/> from the format's offsets: d, dmin (the same half, converted once, where the
    /// format's offset term is scaled by d) and <see cref="ISuperBlockLoad.GroupScales"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Header<TLoad>(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin)
        where TLoad : struct, ISuperBlockLoad
    {
        d = Half16.Read(block + TLoad.DOffset);
        dmin = TLoad.DMinOffset == TLoad.DOffset ? d : Half16.Read(block + TLoad.DMinOffset);
        TLoad.GroupScales(block, out groupScales, out sumWeights);
    }

    /// <summary><see cref="ISuperBlockLoad.GroupScales4"/> as four <see cref="ISuperBlockLoad.GroupScales"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void EachGroupScales<TLoad>(
        byte* block,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3)
        where TLoad : struct, ISuperBlockLoad
    {
        TLoad.GroupScales(block, out scales0, out weights0);
        TLoad.GroupScales(block + TLoad.BlockBytes, out scales1, out weights1);
        TLoad.GroupScales(block + 2 * TLoad.BlockBytes, out scales2, out weights2);
        TLoad.GroupScales(block + 3 * TLoad.BlockBytes, out scales3, out weights3);
    }
}

/// <summary>Two 256-bit halves as one 512-bit vector.</summary>
internal static class Halves
{
    // One vinserti64x4: Vector512.Create(lower, upper) went through a stack slot in the kernels' loops.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Combine(Vector256<byte> lower, Vector256<byte> upper) =>
        Avx512F.InsertVector256(lower.ToVector512Unsafe(), upper, 1);

    /// <summary>
    /// The 32 bytes at <paramref name="source"/> in both halves, by vbroadcasti32x8 (one load, no shuffle). Not
    /// Avx512F.BroadcastVector256ToVector512, whose address the .NET 10 JIT folds into vbroadcasti64x4 as a 16-byte
    /// operand in optimized code: Q4_K and Q6_K decode then read other bytes than the block's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Broadcast(byte* source)
    {
        return Avx512DQ.BroadcastVector256ToVector512((int*)source).AsByte();
    }
}

/// <summary>The nibble and scale layout Q4_K and Q5_K share.</summary>
internal static unsafe class Nibbles
{
    /// <summary>
    /// GF(2) affine matrices (vgf2p8affineqb) of a byte's low nibble and of its high nibble shifted down: row byte 7 − i
    /// of the matrix selects the input bits of output bit i.
    /// </summary>
    public const ulong LowNibble = 0x0102040800000000, HighNibble = 0x1020408000000000;

    /// <summary>
    /// Low nibbles (the first 32 quants of the 32-byte chunk at <paramref name="packed"/>) then high nibbles (the next
    /// 32): the chunk broadcast to both halves and the upper half's 16-bit lanes shifted by 4.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Both(byte* packed)
    {
        if (Gfni.V512.IsSupported)
        {
            // One affine bit transform per byte (its matrix chosen per 64-bit lane) where the shift and mask take two.
            return Gfni.V512.GaloisFieldAffineTransform(Halves.Broadcast(packed), Vector512.Create(LowNibble, LowNibble, LowNibble, LowNibble, HighNibble, HighNibble, HighNibble, HighNibble).AsByte(), 0);
        }

        Vector512<ushort> both = Halves.Broadcast(packed).AsUInt16();
        Vector512<ushort> shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4);
        return Avx512BW.ShiftRightLogicalVariable(both, shifts).AsByte() & Vector512.Create((byte)0xF);
    }

    /// <summary>
    /// The 128 quants of the 64 nibble bytes at <paramref name="packed"/> (two 32-byte chunks) in the order of
    /// <see cref="QuantizedActivations.NibbleQuants"/>: the low nibbles (the first 32 quants of each chunk) and the high
    /// nibbles (the next 32 of each), from one load where <see cref="Both"/> takes a broadcast per chunk.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pairs(byte* packed, out Vector512<byte> low, out Vector512<byte> high)
    {
        Vector512<byte> raw = Vector512.Load(packed);
        low = raw & Vector512.Create((byte)0xF);
        high = Gfni.V512.IsSupported
            ? Gfni.V512.GaloisFieldAffineTransform(raw, Vector512.Create(HighNibble).AsByte(), 0)
            : Vector512.ShiftRightLogical(raw, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Select(Vector256<byte> packed, int value) =>
        (value & 32) == 0 ? packed & Vector256.Create((byte)0xF) : Vector256.ShiftRightLogical(packed, 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Select(Vector128<byte> packed, int value) =>
        (value & 32) == 0 ? packed & Vector128.Create((byte)0xF) : Vector128.ShiftRightLogical(packed, 4);

    /// <summary>
    /// The 6-bit scale and min of each 32-quant sub-block, unpacked four at a time from the 12 packed bytes as ggml's
    /// dot products do (the same values as <see cref="QuantizedReference.ScaleMinK4"/>); each min weighs two sums of 16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void HeaderK4(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights, out float d, out float dmin)
    {
        d = Half16.Read(block);
        dmin = Half16.Read(block + 2);
        ScalesK4(block, out groupScales, out sumWeights);
    }

    /// <summary>The d and dmin (halves at bytes 0 and 2) of four super-blocks <paramref name="blockBytes"/> apart, as <see cref="ISuperBlockLoad.Multipliers4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multipliers4(byte* block, int blockBytes)
    {
        var both = Vector128.Create(
            Unsafe.ReadUnaligned<uint>(block), Unsafe.ReadUnaligned<uint>(block + blockBytes),
            Unsafe.ReadUnaligned<uint>(block + 2 * blockBytes), Unsafe.ReadUnaligned<uint>(block + 3 * blockBytes));
        return Half16.ToSingle(Vector256.Create(both, Vector128.ShiftRightLogical(both, 16)).AsInt32());
    }

    /// <summary>
    /// <see cref="ScalesK4"/> of the four super-blocks from <paramref name="block"/>, <paramref name="blockBytes"/> apart,
    /// with each step applied to all four in the 64-bit lanes of one vector (one lane per super-block, eight scale or min
    /// bytes each). Only lanes 0–7 of a super-block's group scales are set; its eight groups read no others.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScalesK4x4(
        byte* block, int blockBytes,
        out Vector256<short> scales0, out Vector256<short> weights0, out Vector256<short> scales1, out Vector256<short> weights1,
        out Vector256<short> scales2, out Vector256<short> weights2, out Vector256<short> scales3, out Vector256<short> weights3)
    {
        // Per lane: packed = bytes 4-11 (scales 0-3 and mins 0-3 in their low six bits), high = bytes 12-15.
        var packed = Vector256.Create(
            Unsafe.ReadUnaligned<ulong>(block + 4), Unsafe.ReadUnaligned<ulong>(block + blockBytes + 4),
            Unsafe.ReadUnaligned<ulong>(block + 2 * blockBytes + 4), Unsafe.ReadUnaligned<ulong>(block + 3 * blockBytes + 4));
        var high = Vector256.Create(
            (ulong)Unsafe.ReadUnaligned<uint>(block + 12), Unsafe.ReadUnaligned<uint>(block + blockBytes + 12),
            Unsafe.ReadUnaligned<uint>(block + 2 * blockBytes + 12), Unsafe.ReadUnaligned<uint>(block + 3 * blockBytes + 12));
        Vector256<ulong> low6 = Vector256.Create(0x3F3F3F3FUL), low4 = Vector256.Create(0x0F0F0F0FUL), top2 = Vector256.Create(0x03030303UL);
        Vector256<byte> scales = ((packed & low6) | (((high & low4) | (((packed >> 6) & top2) << 4)) << 32)).AsByte();
        Vector256<byte> mins = (((packed >> 32) & low6) | ((((high >> 4) & low4) | (((packed >> 38) & top2) << 4)) << 32)).AsByte();
        scales0 = Vector128.WidenLower(scales.GetLower()).AsInt16().ToVector256Unsafe();
        scales1 = Vector128.WidenUpper(scales.GetLower()).AsInt16().ToVector256Unsafe();
        scales2 = Vector128.WidenLower(scales.GetUpper()).AsInt16().ToVector256Unsafe();
        scales3 = Vector128.WidenUpper(scales.GetUpper()).AsInt16().ToVector256Unsafe();

        // Each min weighs the two sums of 16 of its group: the bytes doubled and widened.
        Vector128<byte> first = Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        Vector128<byte> second = first + Vector128.Create((byte)8);
        weights0 = Vector256.WidenLower(Vector128.Shuffle(mins.GetLower(), first).ToVector256Unsafe()).AsInt16();
        weights1 = Vector256.WidenLower(Vector128.Shuffle(mins.GetLower(), second).ToVector256Unsafe()).AsInt16();
        weights2 = Vector256.WidenLower(Vector128.Shuffle(mins.GetUpper(), first).ToVector256Unsafe()).AsInt16();
        weights3 = Vector256.WidenLower(Vector128.Shuffle(mins.GetUpper(), second).ToVector256Unsafe()).AsInt16();
    }

    /// <summary>
    /// The headers of the four super-blocks from <paramref name="block"/>, <paramref name="blockBytes"/> apart, for the
    /// 512-bit decode kernels, each worked on in a 128-bit lane of one vector: the group scales as shorts (super-block
    /// k's eight at 8k … 8k + 7), the mins likewise (for <see cref="MinOffsets4"/>), and d and dmin as
    /// <see cref="Multipliers4"/> gives them. The same values as <see cref="ScalesK4x4"/> and <see cref="Multipliers4"/>,
    /// from four 16-byte loads where those gather the header in 8-, 4- and 2-byte pieces, with a quarter of the
    /// widening shuffles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Headers4(byte* block, int blockBytes, out Vector512<short> scales, out Vector512<short> mins, out Vector256<float> multipliers)
    {
        Vector512<byte> raw = Halves.Combine(
            Vector256.Create(Vector128.Load(block), Vector128.Load(block + blockBytes)),
            Vector256.Create(Vector128.Load(block + 2 * blockBytes), Vector128.Load(block + 3 * blockBytes)));

        // Per lane, ScalesK4x4's steps on its low 64 bits: packed = bytes 4-11, high = bytes 12-15 (the rest is unused).
        Vector512<ulong> packed = Avx512BW.ShiftRightLogical128BitLane(raw, 4).AsUInt64();
        Vector512<ulong> high = Avx512BW.ShiftRightLogical128BitLane(raw, 12).AsUInt64();
        Vector512<ulong> low6 = Vector512.Create(0x3F3F3F3FUL), low4 = Vector512.Create(0x0F0F0F0FUL), top2 = Vector512.Create(0x03030303UL);
        Vector512<byte> scaleBytes = ((packed & low6) | (((high & low4) | (((packed >> 6) & top2) << 4)) << 32)).AsByte();
        Vector512<byte> minBytes = (((packed >> 32) & low6) | ((((high >> 4) & low4) | (((packed >> 38) & top2) << 4)) << 32)).AsByte();
        scales = Avx512BW.UnpackLow(scaleBytes, Vector512<byte>.Zero).AsInt16();
        mins = Avx512BW.UnpackLow(minBytes, Vector512<byte>.Zero).AsInt16();

        Vector128<int> both = Avx512F.PermuteVar16x32(raw.AsInt32(), Vector512.Create(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12)).GetLower().GetLower();
        multipliers = Half16.ToSingle(Vector256.Create(both, Vector128.ShiftRightLogical(both, 16)));
    }

    /// <summary>
    /// Each of the four super-blocks' Σ min · (sum of 16) of one token, <paramref name="mins"/> as <see cref="Headers4"/>
    /// gives them and <paramref name="sums"/> the token's sixteen sums per super-block: each min weighs the two sums of
    /// 16 of its group, two super-blocks' mins at a time against their 32 sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MinOffsets4(Vector512<short> mins, short* sums)
    {
        Vector512<short> pairs = Vector512.Create((short)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        return BlockReduction.Sums(
            Avx512BW.MultiplyAddAdjacent(Avx512BW.PermuteVar32x16(mins, pairs), Vector512.Load(sums)),
            Avx512BW.MultiplyAddAdjacent(Avx512BW.PermuteVar32x16(mins, pairs + Vector512.Create((short)16)), Vector512.Load(sums + 32)));
    }

    /// <summary><see cref="HeaderK4"/> without d and dmin.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScalesK4(byte* block, out Vector256<short> groupScales, out Vector256<short> sumWeights)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(block + 4), u1 = Unsafe.ReadUnaligned<uint>(block + 8), u2 = Unsafe.ReadUnaligned<uint>(block + 12);
        ulong scales = (u0 & 0x3F3F3F3Fu) | ((ulong)((u2 & 0x0F0F0F0Fu) | (((u0 >> 6) & 0x03030303u) << 4)) << 32);
        ulong mins = (u1 & 0x3F3F3F3Fu) | ((ulong)(((u2 >> 4) & 0x0F0F0F0Fu) | (((u1 >> 6) & 0x03030303u) << 4)) << 32);
        groupScales = Vector128.WidenLower(Vector128.CreateScalar(scales).AsByte()).AsInt16().ToVector256();
        Vector128<byte> pairs = Vector128.Shuffle(Vector128.CreateScalar(mins).AsByte(), Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
        (Vector128<ushort> low, Vector128<ushort> high) = Vector128.Widen(pairs);
        sumWeights = Vector256.Create(low, high).AsInt16();
    }
}
