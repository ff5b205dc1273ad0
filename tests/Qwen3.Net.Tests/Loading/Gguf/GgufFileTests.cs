using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>The GGUF header and metadata parser on valid and hostile files: every problem is a ModelLoadException naming the file and the key or tensor.</summary>
public sealed class GgufFileTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Two keys and two tensors (an F32 vector, a Q8_0 matrix): 64 + 2·34 bytes of data.</summary>
    private static RawGguf Valid(uint version = 3) => new RawGguf()
        .Header(tensors: 2, kvs: 2, version)
        .KeyString("general.architecture", "qwen3")
        .KeyArray("numbers", GgufValueType.Int32, 3).U32(1).U32(2).U32(unchecked((uint)-3))
        .Tensor("norm.weight", [16], GgmlType.F32, 0)
        .Tensor("blk.0.attn_q.weight", [32, 2], GgmlType.Q8_0, 64)
        .Pad()
        .Zeros(64 + 68);

    private GgufFile Open(byte[] bytes) => GgufFile.Open(_temp.Write("model.gguf", bytes));

    private ModelLoadException Fails(byte[] bytes, string? name = null)
    {
        var e = FluentActions.Invoking(() => Open(bytes)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_temp.File("model.gguf"));
        e.Message.Should().Contain(_temp.File("model.gguf"));
        if (name is not null)
        {
            e.TensorName.Should().Be(name);
            e.Message.Should().Contain(name);
        }

        return e;
    }

    [Theory]
    [InlineData(2u)]
    [InlineData(3u)]
    public void A_valid_file_reads_its_metadata_and_tensors(uint version)
    {
        using GgufFile file = Open(Valid(version).ToArray());

        file.Version.Should().Be(version);
        file.GetString("general.architecture").Should().Be("qwen3");
        file.GetInt32Array("numbers").Should().Equal(1, 2, -3);
        file.GetString("absent").Should().BeNull();
        file.Tensors.Select(t => t.Name).Should().Equal("norm.weight", "blk.0.attn_q.weight");
        file.Tensors[1].ByteLength.Should().Be(68);
        file.Tensors[1].RowMajorShape.Should().Equal(2, 32);
        file.DataOffset.Should().Be(file.DataOffset / 32 * 32);
    }

    [Fact]
    public void Every_truncation_of_a_valid_file_is_refused()
    {
        byte[] valid = Valid().ToArray();
        for (int length = 0; length < valid.Length; length++)
        {
            FluentActions.Invoking(() => Open(valid[..length]).Dispose()).Should().Throw<ModelLoadException>($"the file cut to {length} bytes");
        }
    }

    [Fact]
    public void Bad_magic_is_refused() =>
        Fails(new RawGguf().Header(0, 0, magic: 0x4C4D5447).ToArray()).Message.Should().Contain("bad magic");

    [Theory]
    [InlineData(1u, "version 1")]
    [InlineData(4u, "unknown GGUF version 4")]
    [InlineData(0x03000000u, "big-endian")]
    public void Unsupported_versions_are_refused(uint version, string expected) =>
        Fails(new RawGguf().Header(0, 0, version).ToArray()).Message.Should().Contain(expected);

    [Fact]
    public void A_huge_metadata_count_is_refused_before_anything_is_allocated() =>
        Fails(new RawGguf().Header(0, 1UL << 60).ToArray()).Message.Should().Contain("metadata count");

    [Fact]
    public void A_huge_tensor_count_is_refused_before_anything_is_allocated() =>
        Fails(new RawGguf().Header(1UL << 60, 0).ToArray()).Message.Should().Contain("tensor count");

    [Fact]
    public void A_huge_array_length_is_refused() =>
        Fails(new RawGguf().Header(0, 1).KeyArray("tokenizer.ggml.tokens", GgufValueType.String, 1UL << 60).Zeros(64).ToArray(), "tokenizer.ggml.tokens")
            .Message.Should().Contain("claims");

    [Fact]
    public void A_string_length_past_the_end_is_refused() =>
        Fails(new RawGguf().Header(0, 1).String("general.name").U32((uint)GgufValueType.String).U64(1000).Zeros(10).ToArray(), "general.name")
            .Message.Should().Contain("past the end");

    [Fact]
    public void A_key_length_past_the_end_is_refused() =>
        Fails(new RawGguf().Header(0, 1).U64(1UL << 60).Zeros(16).ToArray()).Message.Should().Contain("past the end");

    [Fact]
    public void An_array_element_string_past_the_end_is_refused() =>
        Fails(new RawGguf().Header(0, 1).KeyArray("tokenizer.ggml.tokens", GgufValueType.String, 2).String("a").U64(500).Zeros(8).ToArray(), "tokenizer.ggml.tokens");

    [Fact]
    public void Arrays_nested_deeper_than_the_limit_are_refused()
    {
        var raw = new RawGguf().Header(0, 1).KeyArray("deep", GgufValueType.Array, 1);
        for (int i = 0; i < GgufFile.MaxArrayDepth; i++)
        {
            raw.U32((uint)GgufValueType.Array).U64(1);
        }

        raw.U32((uint)GgufValueType.UInt8).U64(1).Zeros(1);
        Fails(raw.ToArray(), "deep").Message.Should().Contain("nests arrays deeper");
    }

    [Fact]
    public void Nested_arrays_within_the_limit_are_walked()
    {
        byte[] bytes = new RawGguf().Header(0, 2)
            .KeyArray("nested", GgufValueType.Array, 2)
            .U32((uint)GgufValueType.UInt8).U64(1).Zeros(1)
            .U32((uint)GgufValueType.String).U64(1).String("x")
            .KeyU32("after", 7).ToArray();
        using GgufFile file = Open(bytes);
        file.GetInteger("after").Should().Be(7);
    }

    [Fact]
    public void An_unknown_value_type_is_refused() =>
        Fails(new RawGguf().Header(0, 1).String("odd").U32(99).Zeros(8).ToArray(), "odd").Message.Should().Contain("unknown value type 99");

    [Fact]
    public void A_duplicate_key_is_refused() =>
        Fails(new RawGguf().Header(0, 2).KeyU32("a", 1).KeyU32("a", 2).ToArray(), "a").Message.Should().Contain("twice");

    [Fact]
    public void A_key_that_is_not_utf8_is_refused() =>
        Fails(new RawGguf().Header(0, 1).Bytes([0x61, 0xFF]).U32((uint)GgufValueType.UInt32).U32(1).ToArray()).Message.Should().Contain("UTF-8");

    [Fact]
    public void A_bool_other_than_0_or_1_is_refused() =>
        Fails(new RawGguf().Header(0, 1).String("flag").U32((uint)GgufValueType.Bool).Byte(2).ToArray(), "flag");

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(48u)]
    public void An_alignment_that_is_not_a_power_of_two_is_refused(uint alignment) =>
        Fails(new RawGguf().Header(0, 1).KeyU32("general.alignment", alignment).ToArray(), "general.alignment");

    [Fact]
    public void A_misaligned_tensor_offset_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [4], GgmlType.F32, 8).Pad().Zeros(64).ToArray(), "t").Message.Should().Contain("alignment");

    [Fact]
    public void A_custom_alignment_is_honoured()
    {
        byte[] bytes = new RawGguf().Header(1, 1).KeyU32("general.alignment", 64).Tensor("t", [4], GgmlType.F32, 64).Pad(64).Zeros(128).ToArray();
        using GgufFile file = Open(bytes);
        file.Alignment.Should().Be(64);
        file.DataOffset.Should().Be(file.DataOffset / 64 * 64);
        Fails(new RawGguf().Header(1, 1).KeyU32("general.alignment", 64).Tensor("t", [4], GgmlType.F32, 32).Pad(64).Zeros(128).ToArray(), "t");
    }

    [Fact]
    public void Tensor_data_past_the_end_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [16], GgmlType.F32, 0).Pad().Zeros(63).ToArray(), "t").Message.Should().Contain("truncated");

    [Fact]
    public void A_huge_tensor_offset_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [16], GgmlType.F32, 1UL << 62).Pad().Zeros(64).ToArray(), "t");

    [Fact]
    public void Overlapping_tensors_are_refused() =>
        Fails(new RawGguf().Header(2, 0).Tensor("a", [16], GgmlType.F32, 0).Tensor("b", [16], GgmlType.F32, 32).Pad().Zeros(96).ToArray(), "b")
            .Message.Should().Contain("overlap");

    [Fact]
    public void A_duplicate_tensor_name_is_refused() =>
        Fails(new RawGguf().Header(2, 0).Tensor("a", [8], GgmlType.F32, 0).Tensor("a", [8], GgmlType.F32, 32).Pad().Zeros(64).ToArray(), "a");

    [Fact]
    public void An_unknown_tensor_type_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [16], (GgmlType)99, 0).Pad().Zeros(64).ToArray(), "t").Message.Should().Contain("unknown ggml type 99");

    [Fact]
    public void A_row_that_is_not_whole_blocks_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [33, 1], GgmlType.Q8_0, 0).Pad().Zeros(64).ToArray(), "t").Message.Should().Contain("block");

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void A_dimension_count_outside_1_to_4_is_refused(int count) =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", Enumerable.Repeat(1L, count).ToArray(), GgmlType.F32, 0).Pad().Zeros(32).ToArray(), "t");

    [Fact]
    public void A_dimension_too_large_is_refused() =>
        Fails(new RawGguf().Header(1, 0).Tensor("t", [1L << 40], GgmlType.F32, 0).Pad().Zeros(32).ToArray(), "t");

    [Theory]
    [InlineData("Q4_0", 256, 144)]
    [InlineData("Q5_0", 256, 176)]
    [InlineData("Q8_0", 256, 272)]
    [InlineData("Q4_K", 256, 144)]
    [InlineData("Q5_K", 256, 176)]
    [InlineData("Q6_K", 256, 210)]
    [InlineData("BF16", 256, 512)]
    public void Block_type_byte_lengths_follow_ggml(string typeName, long columns, long bytes)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        GgmlTypes.RowBytes(type, columns).Should().Be(bytes);
        byte[] exact = new RawGguf().Header(1, 0).Tensor("t", [columns, 3], type, 0).Pad().Zeros((int)(3 * bytes)).ToArray();
        using (GgufFile file = Open(exact))
        {
            file.Tensors[0].ByteLength.Should().Be(3 * bytes);
        }

        Fails(exact[..^1], "t");
    }

    [Fact]
    public void Typed_getters_refuse_a_value_of_another_type()
    {
        using GgufFile file = Open(Valid().ToArray());
        FluentActions.Invoking(() => file.GetInteger("general.architecture")).Should().Throw<ModelLoadException>().Which.TensorName.Should().Be("general.architecture");
        FluentActions.Invoking(() => file.GetStringArray("numbers")).Should().Throw<ModelLoadException>().Which.TensorName.Should().Be("numbers");
    }
}
