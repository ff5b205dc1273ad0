using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>
/// GGUF files that are valid containers but not a usable Qwen3 model: each is refused at load with an exception that
/// names the file and the tensor or key at fault.
/// </summary>
public sealed class GgufModelLoadTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private ModelLoadException Fails(Action<GgufWriter> edit, string name)
    {
        string path = TinyGgufModel.Write(_temp, edit);
        var e = FluentActions.Invoking(() => Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 1 }).Dispose())
            .Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(path);
        e.TensorName.Should().Be(name);
        e.Message.Should().Contain(path).And.Contain(name);
        return e;
    }

    private static void Replace(GgufWriter w, string key, string value)
    {
        w.Remove(key).Should().BeTrue();
        w.AddString(key, value);
    }

    [Fact]
    public void Another_architecture_is_not_supported_and_named()
    {
        string path = TinyGgufModel.Write(_temp, w => Replace(w, "general.architecture", "llama"));
        FluentActions.Invoking(() => Qwen3Model.Load(path).Dispose())
            .Should().Throw<NotSupportedException>().Which.Message.Should().Contain("'llama'").And.Contain(path);
    }

    [Fact]
    public void A_missing_architecture_is_named() =>
        Fails(w => w.Remove("general.architecture"), "general.architecture");

    [Fact]
    public void A_missing_tensor_is_named() =>
        Fails(w => w.RemoveTensor("blk.1.ffn_up.weight").Should().BeTrue(), "blk.1.ffn_up.weight").Message.Should().Contain("missing");

    [Fact]
    public void A_tensor_of_the_wrong_shape_is_named() =>
        Fails(
            w =>
            {
                w.RemoveTensor("blk.0.attn_k.weight").Should().BeTrue();
                w.AddTensor("blk.0.attn_k.weight", [64, 96], GgmlType.BF16, 64 * 96 * 2, s => s.Write(new byte[64 * 96 * 2]));
            },
            "blk.0.attn_k.weight").Message.Should().Contain("[96, 64]").And.Contain("[64, 96]");

    [Fact]
    public void An_unexpected_tensor_is_named() =>
        Fails(w => w.AddTensor("blk.0.attn_q.bias", [128], GgmlType.F32, 512, s => s.Write(new byte[512])), "blk.0.attn_q.bias")
            .Message.Should().Contain("Unexpected");

    [Fact]
    public void A_tensor_type_the_engine_cannot_run_is_named() =>
        Fails(
            w =>
            {
                w.RemoveTensor("blk.0.attn_k.weight").Should().BeTrue();
                w.AddTensor("blk.0.attn_k.weight", [96, 64], GgmlType.Q2_K, 0, _ => { });
            },
            "blk.0.attn_k.weight").Message.Should().Contain("Q2_K");

    [Theory]
    [InlineData("tokenizer.ggml.tokens")]
    [InlineData("tokenizer.ggml.merges")]
    [InlineData("tokenizer.ggml.token_type")]
    [InlineData("tokenizer.ggml.model")]
    [InlineData("qwen3.block_count")]
    [InlineData("qwen3.attention.layer_norm_rms_epsilon")]
    public void A_missing_required_key_is_named(string key) =>
        Fails(w => w.Remove(key).Should().BeTrue(), key).Message.Should().Contain("missing");

    [Fact]
    public void A_hyperparameter_of_the_wrong_type_is_named() =>
        Fails(w => Replace(w, "qwen3.block_count", "two"), "qwen3.block_count");

    [Fact]
    public void A_tokenizer_of_another_kind_is_named() =>
        Fails(w => Replace(w, "tokenizer.ggml.pre", "llama-bpe"), "tokenizer.ggml.pre");

    [Fact]
    public void A_chat_template_that_does_not_parse_is_named() =>
        Fails(w => Replace(w, "tokenizer.chat_template", "{% if %}"), "tokenizer.chat_template");

    [Fact]
    public void The_fuzz_seed_model_of_tiny_shapes_loads_and_runs()
    {
        // Written by fuzz/make-seeds.py: BF16, F16 and F32 matrices, YaRN scaling, 271 tokens.
        string path = Path.Combine(Fixtures.Root, "fuzz", "corpus", "gguf", "seed-tiny-qwen3-shapes");
        using var model = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 1 });
        model.Config.RopeScaling!.Factor.Should().Be(4);
        model.Tokenizer.Encode(" th").Should().Equal(model.Tokenizer.TokenToId("Ġth")!.Value);
        using var ctx = model.CreateContext();
        var logits = ctx.Evaluate([1, 2, model.Tokenizer.ImEndId]).ToArray();
        logits.Should().HaveCount(model.Config.VocabSize).And.OnlyContain(v => float.IsFinite(v));
    }

    [Fact]
    public void The_fuzz_seed_model_in_32_value_block_formats_loads_and_runs()
    {
        // Written by fuzz/make-seeds.py: hidden size 32, Q5_0, Q4_0 and Q8_0 matrices of patterned blocks.
        SeedLogits("seed-quantized-tiny-qwen3", [GgmlType.F32, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q8_0]);
    }

    [Fact]
    public void The_fuzz_seed_model_in_K_formats_loads_and_runs()
    {
        // Written by fuzz/make-seeds.py: hidden size 256, Q2_K, Q3_K (the embedding and tied output head too), Q4_K,
        // Q5_K and Q6_K matrices of patterned blocks, Q8_0 where the rows are 32 wide.
        float[] logits = SeedLogits(
            "seed-k-quantized-tiny-qwen3", [GgmlType.F32, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_0]);
        logits.Distinct().Should().HaveCountGreaterThan(1, "the Q3_K head gives each token its own logit");
    }

    /// <summary>A quantized seed of fuzz/corpus/gguf, checked to hold exactly <paramref name="types"/>, loaded and run over three tokens: its finite logits.</summary>
    private static float[] SeedLogits(string seed, GgmlType[] types)
    {
        string path = Path.Combine(Fixtures.Root, "fuzz", "corpus", "gguf", seed);
        using (GgufFile file = GgufFile.Open(path))
        {
            file.Tensors.Select(t => t.Type).Distinct().Should().BeEquivalentTo(types);
        }

        using var model = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 1 });
        using var ctx = model.CreateContext();
        var logits = ctx.Evaluate([1, 2, model.Tokenizer.ImEndId]).ToArray();
        logits.Should().HaveCount(model.Config.VocabSize).And.OnlyContain(v => float.IsFinite(v));
        return logits;
    }

    [Fact]
    public void A_gguf_without_chat_template_loads_but_asks_for_one()
    {
        string path = TinyGgufModel.Write(_temp, w => w.Remove("tokenizer.chat_template").Should().BeTrue());
        using var model = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 1 });
        FluentActions.Invoking(() => new Qwen3.Net.Chat.ChatGenerator(model)).Should().Throw<ModelLoadException>()
            .Which.TensorName.Should().Be("tokenizer.chat_template");
    }
}
