using System.Text.Json;
using Qwen3.Net.Loading;
using Qwen3.Net.ScriptedModel;

namespace Qwen3.Net.Tests.Loading;

public sealed unsafe class TensorStoreTests : IDisposable
{
    readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    void WriteIndex(IEnumerable<(string Tensor, string Shard)> map)
    {
        string json = JsonSerializer.Serialize(new
        {
            metadata = new { total_size = 0 },
            weight_map = map.ToDictionary(m => m.Tensor, m => m.Shard),
        });
        _tmp.Write(TensorStore.IndexFileName, json);
    }

    ModelLoadException OpenFails()
    {
        return FluentActions.Invoking(() => TensorStore.Open(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
    }

    static float F32At(TensorView t, int i) => ((float*)t.Data)[i];

    [Fact]
    public void ShardedIndexResolvesEveryTensorInTheShardItNames()
    {
        // Three layers whose tensors are scattered over three shards (a layer never sits in one shard), plus the
        // untied output head; each tensor's first value encodes its identity.
        string[] shards = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        var builders = shards.Select(_ => new SafetensorsBuilder()).ToArray();
        var names = new List<string> { "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight" };
        for (int l = 0; l < 3; l++)
            foreach (string p in new[] { "self_attn.q_proj", "self_attn.k_proj", "mlp.up_proj", "input_layernorm" })
                names.Add($"model.layers.{l}.{p}.weight");
        var map = new List<(string, string)>();
        for (int i = 0; i < names.Count; i++)
        {
            int shard = (i * 7 + 1) % 3;
            builders[shard].AddF32(names[i], [2, 2], i, i + 0.5f, -i, 100 + shard);
            map.Add((names[i], shards[shard]));
        }
        for (int s = 0; s < 3; s++)
            builders[s].WriteTo(_tmp.File(shards[s]));
        WriteIndex(map);

        using TensorStore store = TensorStore.Open(_tmp.Path);

        store.TensorNames.Should().BeEquivalentTo(names);
        store.FilePaths.Should().HaveCount(3);
        store.TotalBytes.Should().Be(names.Count * 16L);
        for (int i = 0; i < names.Count; i++)
        {
            int shard = (i * 7 + 1) % 3;
            TensorView t = store.Get(names[i], 2, 2);
            t.FilePath.Should().Be(_tmp.File(shards[shard]), names[i]);
            store.FileOf(names[i]).Should().Be(_tmp.File(shards[shard]), names[i]);
            F32At(t, 0).Should().Be(i, names[i]);
            F32At(t, 1).Should().Be(i + 0.5f, names[i]);
            F32At(t, 3).Should().Be(100 + shard, names[i]);
        }
    }

    [Fact]
    public void DroppedPagesReadTheSameValuesBackAndBytesOutsideTheMapsAreRefused()
    {
        using TensorStore store = TensorStore.Open(Fixtures.TinyModelFolder);
        TensorView embeddings = store.Get("model.embed_tokens.weight");
        byte[] before = new ReadOnlySpan<byte>(embeddings.Data, (int)embeddings.ByteLength).ToArray();

        store.DropPages(embeddings.Data, embeddings.ByteLength);

        new ReadOnlySpan<byte>(embeddings.Data, (int)embeddings.ByteLength).SequenceEqual(before).Should()
            .BeTrue("a dropped page of a file map is read back from the file");
        byte[] elsewhere = new byte[3 * 4096];
        Array.Fill(elsewhere, (byte)0x5A);
        fixed (byte* p = elsewhere)
        {
            byte* outside = p;
            FluentActions.Invoking(() => store.DropPages(outside, elsewhere.Length)).Should().Throw<ArgumentOutOfRangeException>()
                .WithMessage("*not inside any of the model's maps*", "memory that is not the map's would lose its contents");
        }

        elsewhere.Should().OnlyContain(b => b == 0x5A);
        FluentActions.Invoking(() => store.DropPages(embeddings.Data, embeddings.ByteLength + (1L << 40))).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void F16SingleFileWithUntiedHeadLoads()
    {
        new SafetensorsBuilder()
            .AddF16("model.embed_tokens.weight", [3, 2], 1, 2, 3, 4, 5, 6)
            .AddF16("lm_head.weight", [3, 2], -1, -2, -3, -4, -5, -6)
            .WriteTo(_tmp.File(TensorStore.SingleFileName));

        using TensorStore store = TensorStore.Open(_tmp.Path);

        store.Contains("lm_head.weight").Should().BeTrue();
        TensorView head = store.Get("lm_head.weight", 3, 2);
        head.DType.Should().Be(TensorDType.F16);
        ((float)((Half*)head.Data)[5]).Should().Be(-6);
        store.TotalBytes.Should().Be(24);
    }

    [Fact]
    public void ShapeMismatchNamesTensorFileAndBothShapes()
    {
        string file = new SafetensorsBuilder().AddF32("w", [2, 3], 1, 2, 3, 4, 5, 6).WriteTo(_tmp.File(TensorStore.SingleFileName));
        using TensorStore store = TensorStore.Open(_tmp.Path);

        var e = FluentActions.Invoking(() => store.Get("w", 3, 2)).Should().Throw<ModelLoadException>().Which;

        e.TensorName.Should().Be("w");
        e.FilePath.Should().Be(file);
        e.Message.Should().Contain("'w'").And.Contain(file).And.Contain("[2, 3]").And.Contain("expected [3, 2]");
        FluentActions.Invoking(() => store.Get("w", 2, 3, 1)).Should().Throw<ModelLoadException>()
            .Which.Message.Should().Contain("expected [2, 3, 1]");
    }

    [Fact]
    public void MissingTensorNamesTensorAndFolder()
    {
        string file = new SafetensorsBuilder().AddF32("w", [1], 1).WriteTo(_tmp.File(TensorStore.SingleFileName));
        using TensorStore store = TensorStore.Open(_tmp.Path);

        var e = FluentActions.Invoking(() => store.Get("lm_head.weight")).Should().Throw<ModelLoadException>().Which;

        e.TensorName.Should().Be("lm_head.weight");
        e.FilePath.Should().Be(file);
        e.Message.Should().Contain("lm_head.weight").And.Contain(_tmp.Path);
        store.Contains("lm_head.weight").Should().BeFalse();
    }

    [Fact]
    public void FolderWithoutWeightsIsReported()
    {
        var e = OpenFails();
        e.FilePath.Should().Be(_tmp.Path);
        e.Message.Should().Contain("no model.safetensors or model.safetensors.index.json in folder").And.Contain(_tmp.Path);
    }

    [Fact]
    public void MissingShardNamesShardAndATensorInIt()
    {
        new SafetensorsBuilder().AddF32("a", [1], 1).WriteTo(_tmp.File("s1.safetensors"));
        WriteIndex([("a", "s1.safetensors"), ("b", "s2.safetensors")]);

        var e = OpenFails();

        e.FilePath.Should().Be(_tmp.File("s2.safetensors"));
        e.TensorName.Should().Be("b");
        e.Message.Should().Contain("s2.safetensors").And.Contain("'b'");
    }

    [Fact]
    public void TensorAbsentFromItsShardNamesBoth()
    {
        new SafetensorsBuilder().AddF32("a", [1], 1).WriteTo(_tmp.File("s1.safetensors"));
        new SafetensorsBuilder().AddF32("b", [1], 1).WriteTo(_tmp.File("s2.safetensors"));
        // "b" lives in s2 but the index says s1.
        WriteIndex([("a", "s1.safetensors"), ("b", "s1.safetensors")]);

        var e = OpenFails();

        e.FilePath.Should().Be(_tmp.File("s1.safetensors"));
        e.TensorName.Should().Be("b");
        e.Message.Should().Contain("'b'").And.Contain(_tmp.File("s1.safetensors"));
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("sub/s1.safetensors")]
    [InlineData("sub\\s1.safetensors")]
    [InlineData("..")]
    [InlineData("")]
    public void ShardNameThatLeavesTheFolderIsRejected(string shard)
    {
        WriteIndex([("a", shard)]);

        var e = OpenFails();

        e.FilePath.Should().Be(_tmp.File(TensorStore.IndexFileName));
        e.TensorName.Should().Be("a");
        e.Message.Should().Contain($"'{shard}'");
    }

    [Fact]
    public void IndexWithoutWeightMapIsReported()
    {
        _tmp.Write(TensorStore.IndexFileName, """{"metadata": {}}""");
        var e = OpenFails();
        e.FilePath.Should().Be(_tmp.File(TensorStore.IndexFileName));
        e.Message.Should().Contain("weight_map");
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { (byte)'s', 0x8E })]
    public void InvalidUtf8InTheIndexIsReported(byte[] invalid)
    {
        // Found by fuzzing (fuzz/corpus/safetensors-index/bug-invalid-utf8-*): JsonDocument only checks UTF-8 when a
        // name or string is read.
        byte[] json = [.. "{\"weight_map\": {\""u8, .. invalid, .. "\": \"s1.safetensors\"}}"u8];
        string path = _tmp.Write(TensorStore.IndexFileName, json);
        var e = FluentActions.Invoking(() => TensorStore.Open(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(path);
        e.Message.Should().Contain("not valid UTF-8");
    }

    [Fact]
    public void CorruptShardIsReportedWithItsPath()
    {
        new SafetensorsBuilder().AddF32("a", [1], 1).WriteTo(_tmp.File("s1.safetensors"));
        _tmp.Write("s2.safetensors", new byte[3]);
        WriteIndex([("a", "s1.safetensors"), ("b", "s2.safetensors")]);

        OpenFails().FilePath.Should().Be(_tmp.File("s2.safetensors"));
    }

    [Fact]
    public void DisposedStoreRefusesAccess()
    {
        new SafetensorsBuilder().AddF32("w", [1], 1).WriteTo(_tmp.File(TensorStore.SingleFileName));
        TensorStore store = TensorStore.Open(_tmp.Path);
        store.Dispose();
        FluentActions.Invoking(() => store.Get("w")).Should().Throw<ObjectDisposedException>();
    }
}
