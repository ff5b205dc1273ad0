using System.Buffers.Binary;
using Qwen3.Net.Loading;
using Qwen3.Net.ScriptedModel;

namespace Qwen3.Net.Tests.Loading;

public sealed unsafe class SafetensorsFileTests : IDisposable
{
    readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    ModelLoadException OpenFails(byte[] bytes, string? tensor = null)
    {
        string path = _tmp.Write("bad.safetensors", bytes);
        var e = FluentActions.Invoking(() => SafetensorsFile.Open(path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(path);
        e.Message.Should().Contain(path);
        e.TensorName.Should().Be(tensor);
        if (tensor is not null)
            e.Message.Should().Contain(tensor);
        return e;
    }

    [Fact]
    public void F32AndF16TensorsLoadWithTheirValues()
    {
        string path = new SafetensorsBuilder()
            .AddF32("a", [2, 3], 1, -2, 3.5f, 0, 1e-3f, -7)
            .AddF16("b", [4], 0.5f, -1, 2, 65504)
            .AddBF16("c", [2], 1.5f, -0.25f)
            .Add("empty", "F32", [0, 4])
            .WriteTo(_tmp.File("m.safetensors"));

        using SafetensorsFile f = SafetensorsFile.Open(path);

        f.Path.Should().Be(path);
        f.Tensors.Keys.Should().BeEquivalentTo("a", "b", "c", "empty");
        TensorView a = f.Tensors["a"];
        (a.DType, a.ByteLength, a.ElementCount, a.FilePath).Should().Be((TensorDType.F32, 24L, 6L, path));
        a.Shape.Should().Equal(2, 3);
        new ReadOnlySpan<float>(a.Data, 6).ToArray().Should().Equal(1, -2, 3.5f, 0, 1e-3f, -7);
        TensorView b = f.Tensors["b"];
        b.DType.Should().Be(TensorDType.F16);
        new ReadOnlySpan<Half>(b.Data, 4).ToArray().Select(h => (float)h).Should().Equal(0.5f, -1, 2, 65504);
        TensorView c = f.Tensors["c"];
        BitConverter.UInt32BitsToSingle((uint)((ushort*)c.Data)[1] << 16).Should().Be(-0.25f);
        f.Tensors["empty"].ByteLength.Should().Be(0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void FileShorterThanTheLengthPrefixIsTruncated(int length)
    {
        OpenFails(new byte[length]).Message.Should().Contain("truncated");
    }

    [Fact]
    public void HeaderCutOffIsReported()
    {
        byte[] whole = new SafetensorsBuilder().AddF32("a", [2], 1, 2).Build();
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(whole);
        OpenFails(whole[..(8 + headerLength / 2)]).Message.Should().Contain("runs past the end of the file");
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsReported()
    {
        byte[] bytes = new SafetensorsBuilder().AddF32("a", [2], 1, 2).Build();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        OpenFails(bytes).Message.Should().Contain(ulong.MaxValue.ToString()).And.Contain("runs past the end");
    }

    [Fact]
    public void HeaderThatIsNotJsonIsReported()
    {
        OpenFails(SafetensorsBuilder.FromHeader("{\"a\": {\"dtype\": ", new byte[8])).Message.Should().Contain("not valid JSON");
        OpenFails(SafetensorsBuilder.FromHeader("[1, 2]", [])).Message.Should().Contain("JSON object");
    }

    [Fact]
    public void HeaderThatIsNotUtf8IsReported()
    {
        byte[] bytes = SafetensorsBuilder.FromHeader("{\"a\": 1}", []);
        bytes[10] = 0xFF;
        OpenFails(bytes).Message.Should().Contain("UTF-8");
    }

    [Fact]
    public void OffsetsPastTheDataSectionAreReported()
    {
        var b = new SafetensorsBuilder().AddF32("ok", [2], 1, 2).AddWithOffsets("far", "F32", [2], 8, 16);
        b.DataLength = 12;
        OpenFails(b.Build(), "far").Message.Should().Contain("[8, 16]").And.Contain("outside the data section of 12 bytes");
    }

    [Fact]
    public void BytesAfterTheLastTensorAreReported()
    {
        var b = new SafetensorsBuilder().AddF32("a", [2], 1, 2);
        b.DataLength = 12;
        byte[] bytes = b.Build();
        OpenFails(bytes).Message.Should().Contain($"has {bytes.Length} bytes but its header describes {bytes.Length - 4}")
            .And.Contain("4 bytes after the last tensor");
    }

    [Fact]
    public void BeginAfterEndIsReported()
    {
        var b = new SafetensorsBuilder().AddWithOffsets("backwards", "F32", [0], 8, 4);
        b.DataLength = 8;
        OpenFails(b.Build(), "backwards").Message.Should().Contain("[8, 4]");
    }

    [Fact]
    public void OverlappingTensorsAreReported()
    {
        var b = new SafetensorsBuilder()
            .AddWithOffsets("first", "F32", [4], 0, 16)
            .AddWithOffsets("second", "F32", [2], 12, 20);
        var e = OpenFails(b.Build(), "second");
        e.Message.Should().Contain("first").And.Contain("overlap");
    }

    [Fact]
    public void ZeroSizedTensorsAtTheSameOffsetAsANeighbourDoNotOverlap()
    {
        var b = new SafetensorsBuilder()
            .AddWithOffsets("a", "F32", [2], 0, 8)
            .AddWithOffsets("none", "F32", [0], 8, 8)
            .AddWithOffsets("b", "F32", [2], 8, 16);
        string path = _tmp.Write("ok.safetensors", b.Build());
        using var f = SafetensorsFile.Open(path);
        f.Tensors.Should().HaveCount(3);
    }

    [Theory]
    [InlineData("I8")]
    [InlineData("F64")]
    [InlineData("FOO")]
    public void UnsupportedDtypeIsNamed(string dtype)
    {
        byte[] bytes = new SafetensorsBuilder().AddF32("ok", [1], 1).Add("odd", dtype, [2]).Build();
        OpenFails(bytes, "odd").Message.Should().Contain($"unsupported dtype {dtype} of tensor odd");
    }

    [Fact]
    public void ByteLengthThatDisagreesWithShapeIsReported()
    {
        var b = new SafetensorsBuilder().AddWithOffsets("short", "BF16", [3, 4], 0, 20);
        OpenFails(b.Build(), "short").Message.Should().Contain("20 bytes").And.Contain("[3, 4]").And.Contain("24 bytes");
    }

    [Fact]
    public void ShapeWhoseSizeOverflowsIsReported()
    {
        var b = new SafetensorsBuilder().AddWithOffsets("huge", "F32", [int.MaxValue, int.MaxValue, int.MaxValue], 0, 8);
        OpenFails(b.Build(), "huge").Message.Should().Contain("overflows");
    }

    [Fact]
    public void NegativeDimensionIsReported()
    {
        var b = new SafetensorsBuilder().AddWithOffsets("neg", "F32", [-1], 0, 0);
        OpenFails(b.Build(), "neg").Message.Should().Contain("non-negative");
    }

    [Fact]
    public void EntryWithoutOffsetsIsReported()
    {
        byte[] bytes = SafetensorsBuilder.FromHeader("""{"t": {"dtype": "F32", "shape": [1]}}""", new byte[4]);
        OpenFails(bytes, "t").Message.Should().Contain("data_offsets");
    }

    [Fact]
    public void MissingFileIsReported()
    {
        string path = _tmp.File("absent.safetensors");
        var e = FluentActions.Invoking(() => SafetensorsFile.Open(path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(path);
        e.Message.Should().Contain(path);
    }
}
