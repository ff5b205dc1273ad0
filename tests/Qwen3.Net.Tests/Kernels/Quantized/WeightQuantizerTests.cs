using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Kernels.Quantized;

public sealed class WeightQuantizerTests
{
    [Theory]
    [MemberData(nameof(QuantizedReferenceTests.WeightTypes), MemberType = typeof(QuantizedReferenceTests))]
    public void KnownRowsQuantizeToGgmlsBytes(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        int rowBytes = (int)GgmlTypes.RowBytes(type, QuantizedFixtures.Columns);
        byte[] ggml = QuantizedFixtures.Bytes($"{QuantizedFixtures.Name(type)}.blocks").AsSpan(0, 2 * rowBytes).ToArray();

        var ours = new byte[2 * rowBytes];
        WeightQuantizer.Quantize(type, FixtureSourceRows(), ours);

        for (int i = 0; i < ours.Length; i++)
        {
            ours[i].Should().Be(ggml[i], $"{type} byte {i} (block {i / GgmlTypes.BytesPerBlock(type)}, offset {i % GgmlTypes.BytesPerBlock(type)})");
        }
    }

    public static TheoryData<string, string> OddRows()
    {
        var data = new TheoryData<string, string>();
        foreach (GgmlType type in QuantizedFixtures.WeightTypes)
        {
            foreach (string shape in new[] { "zeros", "one huge value", "negative only", "positive only", "constant", "alternating signs" })
            {
                data.Add(type.ToString(), shape);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(OddRows))]
    public void OddRowsRoundTripWithinTheFormatsResolution(string typeName, string shape)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        float[] x = MakeRow(shape, 512, seed: 11);
        float[] back = RoundTrip(type, x);

        int block = GgmlTypes.BlockSize(type);
        for (int b = 0; b < x.Length / block; b++)
        {
            float amax = x.AsSpan(b * block, block).ToArray().Max(MathF.Abs);
            for (int i = b * block; i < (b + 1) * block; i++)
            {
                if (amax == 0)
                {
                    back[i].Should().Be(0, $"{type} {shape}: a zero block stays zero");
                    continue;
                }

                MathF.Abs(back[i] - x[i]).Should().BeLessThanOrEqualTo(amax * Resolution(type), $"{type} {shape} value {i}: {x[i]} came back as {back[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedReferenceTests.WeightTypes), MemberType = typeof(QuantizedReferenceTests))]
    public void OneHugeValueSurvivesAndItsNeighboursStaySmall(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        float[] x = MakeRow("one huge value", 256, seed: 5);
        float[] back = RoundTrip(type, x);
        int huge = Array.IndexOf(x, x.Max());

        back[huge].Should().BeApproximately(x[huge], x[huge] * 0.02f, $"{type}: the outlier keeps its value");
        for (int i = 0; i < x.Length; i++)
        {
            float.IsFinite(back[i]).Should().BeTrue();
            MathF.Abs(back[i]).Should().BeLessThanOrEqualTo(x[huge] * Resolution(type) + MathF.Abs(x[i]), $"{type} value {i}");
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedReferenceTests.WeightTypes), MemberType = typeof(QuantizedReferenceTests))]
    public void SubnormalRowsGiveFiniteTinyValues(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        var random = new Random(3);
        float[] x = Enumerable.Range(0, 512).Select(_ => (float)(random.NextDouble() * 2 - 1) * 1e-39f).ToArray();
        x.Should().Contain(v => float.IsSubnormal(v));

        float[] back = RoundTrip(type, x);

        // Scales are f16, whose smallest step is 6e-8: values this small come back as zero or as a few such steps.
        back.Should().OnlyContain(v => float.IsFinite(v) && MathF.Abs(v) < 1e-4f);
    }

    [Fact]
    public void NearestIntRoundsHalfToEvenLikeGgml()
    {
        WeightQuantizer.NearestInt(2.5f).Should().Be(2);
        WeightQuantizer.NearestInt(3.5f).Should().Be(4);
        WeightQuantizer.NearestInt(-2.5f).Should().Be(-2);
        WeightQuantizer.NearestInt(-0.4f).Should().Be(0);
        WeightQuantizer.NearestInt(4194303f).Should().Be(4194303);
        WeightQuantizer.NearestInt(-4194303f).Should().Be(-4194303);
    }

    [Fact]
    public void PartialBlocksAndShortOutputsAreRejected()
    {
        var act = () => WeightQuantizer.Quantize(GgmlType.Q4_K, new float[255], new byte[1024]);
        act.Should().Throw<ArgumentException>().WithMessage("*whole blocks*");
        act = () => WeightQuantizer.Quantize(GgmlType.Q8_0, new float[64], new byte[67]);
        act.Should().Throw<ArgumentException>().WithMessage("*68 bytes*");
        act = () => WeightQuantizer.Quantize(GgmlType.Q8_K, new float[256], new byte[292]);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*not a weight format*");
    }

    // make-fixtures.c's rows 0–1: known(i), with row 1 starting with a zero block and a block of 1e-3 holding one −1000.
    private static float[] FixtureSourceRows()
    {
        var src = new float[2 * QuantizedFixtures.Columns];
        for (int i = 0; i < src.Length; i++)
        {
            src[i] = QuantizedFixtures.Known(i);
        }

        for (int i = 0; i < 32; i++)
        {
            src[QuantizedFixtures.Columns + i] = 0.0f;
            src[QuantizedFixtures.Columns + 32 + i] = i == 7 ? -1000.0f : 1e-3f;
        }

        return src;
    }

    // The largest error a value may have, as a fraction of its block's largest magnitude: half a quantization step
    // of the format's levels, widened for the 6-bit sub-block scales and f16 rounding of the block scales. Q3_K's
    // levels −4..3 stop one short on one side, so a value there can be off by nearly a whole step of a quarter. Q2_K's
    // four levels span a range up to twice the largest magnitude, fitted by absolute error: about a third.
    private static float Resolution(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => 1f / 127,
        GgmlType.Q4_0 => 1f / 8,
        GgmlType.Q5_0 => 1f / 16,
        GgmlType.Q4_K => 1f / 10,
        GgmlType.Q5_K => 1f / 20,
        GgmlType.Q6_K => 1f / 40,
        GgmlType.Q3_K => 1f / 4,
        GgmlType.Q2_K => 1f / 3,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static float[] MakeRow(string shape, int length, int seed)
    {
        var random = new Random(seed);
        float Next() => (float)(random.NextDouble() * 2 - 1);
        float[] x = shape switch
        {
            "zeros" => new float[length],
            "one huge value" => Enumerable.Range(0, length).Select(_ => Next() * 1e-2f).ToArray(),
            "negative only" => Enumerable.Range(0, length).Select(_ => -MathF.Abs(Next()) - 0.5f).ToArray(),
            "positive only" => Enumerable.Range(0, length).Select(_ => MathF.Abs(Next()) + 3f).ToArray(),
            "constant" => Enumerable.Repeat(-0.75f, length).ToArray(),
            "alternating signs" => Enumerable.Range(0, length).Select(i => (i % 2 == 0 ? 1 : -1) * (0.1f + MathF.Abs(Next()))).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(shape)),
        };
        if (shape == "one huge value")
        {
            x[length / 3] = 3e4f;
        }

        return x;
    }

    private static float[] RoundTrip(GgmlType type, float[] x)
    {
        var blocks = new byte[GgmlTypes.RowBytes(type, x.Length)];
        WeightQuantizer.Quantize(type, x, blocks);
        var back = new float[x.Length];
        QuantizedReference.Dequantize(type, blocks, back);
        return back;
    }
}
