using System.Runtime.Intrinsics;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Kernels.Quantized;

public sealed class QuantizedReferenceTests
{
    public static TheoryData<string> WeightTypes => new(QuantizedFixtures.WeightTypes.Select(t => t.ToString()));

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void DequantizationEqualsGgmlBitForBit(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        byte[] blocks = QuantizedFixtures.Bytes($"{QuantizedFixtures.Name(type)}.blocks");
        float[] expected = QuantizedFixtures.Floats($"{QuantizedFixtures.Name(type)}.f32");
        blocks.Length.Should().Be((int)(QuantizedFixtures.Rows * GgmlTypes.RowBytes(type, QuantizedFixtures.Columns)));

        var actual = new float[expected.Length];
        QuantizedReference.Dequantize(type, blocks, actual);

        for (int i = 0; i < expected.Length; i++)
        {
            BitConverter.SingleToInt32Bits(actual[i]).Should().Be(BitConverter.SingleToInt32Bits(expected[i]), $"{type} value {i} (ggml {expected[i]}, ours {actual[i]})");
        }
    }

    [Fact]
    public void ActivationQuantizationEqualsGgmlByteForByte()
    {
        float[] x = QuantizedFixtures.Floats("activations.f32");
        var q8_0 = new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, x.Length)];
        var q8_k = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, x.Length)];
        QuantizedReference.QuantizeQ8_0(x, q8_0);
        QuantizedReference.QuantizeQ8_K(x, q8_k);
        q8_0.Should().Equal(QuantizedFixtures.Bytes("activations.q8_0"));
        q8_k.Should().Equal(QuantizedFixtures.Bytes("activations.q8_k"));
    }

    [Fact]
    public void ActivationInputsAreTheKnownFloats()
    {
        float[] x = QuantizedFixtures.Floats("activations.f32");
        for (int i = 0; i < x.Length; i++)
        {
            x[i].Should().Be(QuantizedFixtures.Known(i * 7 + 3) * (i % 64 == 5 ? 40.0f : 1.0f));
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void DotProductsMatchGgml(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        byte[] blocks = QuantizedFixtures.Bytes($"{QuantizedFixtures.Name(type)}.blocks");
        float[] ggml = QuantizedFixtures.Floats($"{QuantizedFixtures.Name(type)}.dot.f32");
        GgmlType actType = QuantizedFormat.ActivationType(type);
        byte[] act = QuantizedFixtures.Bytes(actType == GgmlType.Q8_0 ? "activations.q8_0" : "activations.q8_k");
        float[] weights = QuantizedFixtures.Floats($"{QuantizedFixtures.Name(type)}.f32");
        float[] actFloats = new float[QuantizedFixtures.Columns];
        QuantizedReference.Dequantize(actType, act, actFloats);
        int rowBytes = (int)GgmlTypes.RowBytes(type, QuantizedFixtures.Columns);

        for (int r = 0; r < QuantizedFixtures.Rows; r++)
        {
            float ours = QuantizedReference.Dot(type, blocks.AsSpan(r * rowBytes, rowBytes), act, QuantizedFixtures.Columns);

            // ggml's SIMD dot sums the same exact block integers in another float order: bound the difference by
            // the magnitude of the terms summed, from the dequantized values.
            double magnitude = 0;
            for (int c = 0; c < QuantizedFixtures.Columns; c++)
            {
                magnitude += Math.Abs((double)weights[r * QuantizedFixtures.Columns + c] * actFloats[c]);
            }

            ((double)Math.Abs(ours - ggml[r])).Should().BeLessThanOrEqualTo(1e-5 * magnitude, $"{type} row {r}: ggml {ggml[r]}, ours {ours}");
        }
    }

    [Fact]
    public void DotSumsBlockTermsInFourPartialSums()
    {
        // Block terms 2^24, 1, 1, 1, 1, 0, 0, 0: partial 0 is 2^24 + 1, which rounds to 2^24 (ties to even), and
        // (2^24 + 1) + (1 + 1) rounds to 2^24 + 2. One chain in row order would give 2^24, and block 4 in any other
        // partial than 0 would give 2^24 + 4.
        (float Scale, int Sum)[] blocks = [(1024, 16), (1, 1), (1, 1), (1, 1), (1, 1), (1, 0), (1, 0), (1, 0)];
        var weights = new byte[34 * blocks.Length];
        var activations = new byte[34 * blocks.Length];
        for (int b = 0; b < blocks.Length; b++)
        {
            BitConverter.TryWriteBytes(weights.AsSpan(34 * b), BitConverter.HalfToUInt16Bits((Half)blocks[b].Scale)).Should().BeTrue();
            BitConverter.TryWriteBytes(activations.AsSpan(34 * b), BitConverter.HalfToUInt16Bits((Half)blocks[b].Scale)).Should().BeTrue();
            weights[34 * b + 2] = (byte)blocks[b].Sum;
            activations[34 * b + 2] = 1;
        }

        QuantizedReference.Dot(GgmlType.Q8_0, weights, activations, 32 * blocks.Length).Should().Be(16777218f);
    }

    [Fact]
    public void HalfConversionIsExactForEveryInput()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float actual = Half16.ToSingle((ushort)bits);
            if (float.IsNaN(expected))
            {
                float.IsNaN(actual).Should().BeTrue($"half 0x{bits:X4} is NaN");
            }
            else
            {
                BitConverter.SingleToInt32Bits(actual).Should().Be(BitConverter.SingleToInt32Bits(expected), $"half 0x{bits:X4}");
            }
        }
    }

    [Fact]
    public unsafe void StridedHalvesConvertAsOneAtATime()
    {
        // Every half, 34 bytes apart as Q8_0's block scales, with other bytes around them, eight at a time.
        const int stride = 34, count = ushort.MaxValue + 9;
        var bytes = new byte[count * stride];
        new Random(5).NextBytes(bytes);
        for (int i = 0; i < count; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * stride), (ushort)(i * 40503)).Should().BeTrue();
        }

        var widened = new float[count];
        fixed (byte* source = bytes)
        fixed (float* destination = widened)
        {
            for (int i = 0; i < count; i += 8)
            {
                Half16.ReadStrided8(source + (long)i * stride, stride).Store(destination + i);
            }
        }

        for (int i = 0; i < count; i++)
        {
            ushort bits = (ushort)(i * 40503);
            BitConverter.SingleToInt32Bits(widened[i]).Should().Be(BitConverter.SingleToInt32Bits(Half16.ToSingle(bits)), $"half 0x{bits:X4} at {i}");
        }
    }

    [Fact]
    public void ShortBuffersThrow()
    {
        var act = () => QuantizedReference.Dequantize(GgmlType.Q4_K, new byte[143], new float[256]);
        act.Should().Throw<ArgumentException>();
        var partial = () => QuantizedReference.Dequantize(GgmlType.Q8_0, new byte[68], new float[40]);
        partial.Should().Throw<ArgumentException>();
        var dot = () => QuantizedReference.Dot(GgmlType.Q6_K, new byte[210], new byte[291], 256);
        dot.Should().Throw<ArgumentException>();
    }
}
