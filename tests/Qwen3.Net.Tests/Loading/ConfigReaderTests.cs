using System.Text;
using System.Text.Json.Nodes;

namespace Qwen3.Net.Tests.Loading;

public sealed class ConfigReaderTests : IDisposable
{
    readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static JsonObject TinyConfig() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TinyModelFolder, "config.json")))!.AsObject();

    string WriteConfig(JsonObject config)
    {
        _tmp.Write("config.json", config.ToJsonString());
        return _tmp.Path;
    }

    ModelLoadException LoadFails(JsonObject config)
    {
        string folder = WriteConfig(config);
        var e = FluentActions.Invoking(() => Qwen3Config.Load(folder)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_tmp.File("config.json"));
        e.Message.Should().Contain(_tmp.File("config.json"));
        return e;
    }

    [Fact]
    public void TinyModelConfigIsReadFieldForField()
    {
        Qwen3Config c = Qwen3Config.Load(Fixtures.TinyModelFolder);

        c.Architecture.Should().Be("Qwen3ForCausalLM");
        c.HiddenSize.Should().Be(96);
        c.IntermediateSize.Should().Be(256);
        c.NumHiddenLayers.Should().Be(2);
        c.NumAttentionHeads.Should().Be(4);
        c.NumKeyValueHeads.Should().Be(2);
        c.QueryGroupSize.Should().Be(2);
        c.HeadDim.Should().Be(32);
        c.VocabSize.Should().Be(151936);
        c.TieWordEmbeddings.Should().BeTrue();
        c.RopeTheta.Should().Be(1_000_000);
        c.RmsNormEps.Should().Be(1e-6);
        c.MaxPositionEmbeddings.Should().Be(40960);
        c.RopeScaling.Should().BeNull();
        c.TorchDtype.Should().Be("bfloat16");
        // generation_config.json wins over config.json's single 151645.
        c.EosTokenIds.Should().Equal(151645, 151643);
    }

    [Fact]
    public void EosIdsComeFromConfigJsonWithoutGenerationConfig()
    {
        var cfg = TinyConfig();
        Qwen3Config.Load(WriteConfig(cfg)).EosTokenIds.Should().Equal(151645);

        cfg["eos_token_id"] = new JsonArray(1, 2);
        Qwen3Config.Load(WriteConfig(cfg)).EosTokenIds.Should().Equal(1, 2);

        cfg.Remove("eos_token_id");
        Qwen3Config.Load(WriteConfig(cfg)).EosTokenIds.Should().BeEmpty();

        _tmp.Write("generation_config.json", """{"eos_token_id": 7}""");
        Qwen3Config.Load(_tmp.Path).EosTokenIds.Should().Equal(7);
    }

    [Fact]
    public void AbsentOptionalFieldsTakeTransformersDefaults()
    {
        var cfg = TinyConfig();
        foreach (string f in new[] { "head_dim", "tie_word_embeddings", "rope_theta", "rms_norm_eps", "max_position_embeddings", "rope_scaling", "torch_dtype" })
            cfg.Remove(f);

        Qwen3Config c = Qwen3Config.Load(WriteConfig(cfg));

        c.HeadDim.Should().Be(96 / 4);
        c.TieWordEmbeddings.Should().BeFalse();
        c.RopeTheta.Should().Be(10000);
        c.RmsNormEps.Should().Be(1e-6);
        c.MaxPositionEmbeddings.Should().Be(32768);
        c.RopeScaling.Should().BeNull();
        c.TorchDtype.Should().BeNull();
    }

    [Fact]
    public void MissingConfigJsonNamesThePath()
    {
        var e = FluentActions.Invoking(() => Qwen3Config.Load(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_tmp.File("config.json"));
        e.Message.Should().Contain(_tmp.File("config.json"));
    }

    [Fact]
    public void MalformedJsonIsReported()
    {
        _tmp.Write("config.json", "{\"hidden_size\": 96,");
        var e = FluentActions.Invoking(() => Qwen3Config.Load(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_tmp.File("config.json"));
        e.Message.Should().Contain("not valid JSON");
    }

    [Fact]
    public void InvalidUtf8InAStringIsReported()
    {
        // Found by fuzzing (fuzz/corpus/config/bug-invalid-utf8): JsonDocument only checks a string's UTF-8 when it is read.
        byte[] bytes = Encoding.UTF8.GetBytes(TinyConfig().ToJsonString().Replace("\"qwen3\"", "\"qw\u00ffen3\""));
        int at = Array.IndexOf(bytes, (byte)0xC3);
        bytes[at] = 0x8A;
        _tmp.Write("config.json", bytes);
        var e = FluentActions.Invoking(() => Qwen3Config.Load(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_tmp.File("config.json"));
        e.Message.Should().Contain("not valid UTF-8");
    }

    [Theory]
    [InlineData("9")]
    [InlineData("[]")]
    [InlineData("\"text\"")]
    public void NonObjectTopLevelIsReported(string json)
    {
        // Found by fuzzing (fuzz/corpus/config/bug-number-top-level): the message read the document after disposing it.
        _tmp.Write("config.json", json);
        var e = FluentActions.Invoking(() => Qwen3Config.Load(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.Message.Should().Contain("must contain a JSON object");
    }

    [Fact]
    public void NonObjectGenerationConfigIsReported()
    {
        WriteConfig(TinyConfig());
        _tmp.Write("generation_config.json", "[151645]");
        var e = FluentActions.Invoking(() => Qwen3Config.Load(_tmp.Path)).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(_tmp.File("generation_config.json"));
        e.Message.Should().Contain("must contain a JSON object, found Array");
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void MissingRequiredFieldIsNamed(string field)
    {
        var cfg = TinyConfig();
        cfg.Remove(field);
        LoadFails(cfg).Message.Should().Contain($"'{field}'").And.Contain("missing");
    }

    [Theory]
    [InlineData("hidden_size", "\"abc\"")]
    [InlineData("head_dim", "32.5")]
    [InlineData("tie_word_embeddings", "\"yes\"")]
    [InlineData("rope_theta", "\"1e6\"")]
    [InlineData("architectures", "\"Qwen3ForCausalLM\"")]
    [InlineData("rope_scaling", "4")]
    [InlineData("eos_token_id", "\"</s>\"")]
    public void WrongJsonTypeIsNamed(string field, string json)
    {
        var cfg = TinyConfig();
        cfg[field] = JsonNode.Parse(json);
        LoadFails(cfg).Message.Should().Contain($"'{field}'").And.Contain("must be");
    }

    [Theory]
    [InlineData("num_key_value_heads", "3", "multiple of num_key_value_heads")]
    [InlineData("head_dim", "33", "even")]
    [InlineData("hidden_size", "0", "positive")]
    [InlineData("vocab_size", "-5", "positive")]
    [InlineData("num_hidden_layers", "4000000000", "32-bit")]
    [InlineData("rms_norm_eps", "0", "rms_norm_eps")]
    public void InvalidValueIsNamed(string field, string json, string why)
    {
        var cfg = TinyConfig();
        cfg[field] = JsonNode.Parse(json);
        LoadFails(cfg).Message.Should().Contain(why);
    }

    [Theory]
    [InlineData("Qwen3MoeForCausalLM")]
    [InlineData("Qwen2ForCausalLM")]
    [InlineData("LlamaForCausalLM")]
    public void OtherArchitecturesAreNotSupported(string architecture)
    {
        var cfg = TinyConfig();
        cfg["architectures"] = new JsonArray(architecture);
        string folder = WriteConfig(cfg);
        FluentActions.Invoking(() => Qwen3Config.Load(folder)).Should().Throw<NotSupportedException>()
            .Which.Message.Should().Contain(architecture).And.Contain(_tmp.File("config.json"));
    }

    [Fact]
    public void ModelTypeDecidesWhenArchitecturesIsAbsent()
    {
        var cfg = TinyConfig();
        cfg.Remove("architectures");
        Qwen3Config.Load(WriteConfig(cfg)).Architecture.Should().Be("Qwen3ForCausalLM");

        cfg["model_type"] = "qwen3_moe";
        string folder = WriteConfig(cfg);
        FluentActions.Invoking(() => Qwen3Config.Load(folder)).Should().Throw<NotSupportedException>()
            .Which.Message.Should().Contain("qwen3_moe");
    }

    [Fact]
    public void YarnRopeScalingIsRead()
    {
        var cfg = TinyConfig();
        cfg["rope_scaling"] = JsonNode.Parse("""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}""");
        RopeScaling y = Qwen3Config.Load(WriteConfig(cfg)).RopeScaling!;
        y.RopeType.Should().Be("yarn");
        y.Factor.Should().Be(4);
        y.OriginalMaxPositionEmbeddings.Should().Be(32768);
        y.BetaFast.Should().Be(32);
        y.BetaSlow.Should().Be(1);
        y.AttentionFactor.Should().BeNull();
        y.Truncate.Should().BeTrue();

        // Older spelling "type", explicit optional fields, and no original_max_position_embeddings (→ max_position_embeddings).
        cfg["rope_scaling"] = JsonNode.Parse("""{"type": "yarn", "factor": 2, "beta_fast": 16, "beta_slow": 2, "attention_factor": 1.5, "truncate": false}""");
        y = Qwen3Config.Load(WriteConfig(cfg)).RopeScaling!;
        (y.RopeType, y.Factor, y.OriginalMaxPositionEmbeddings, y.BetaFast, y.BetaSlow, y.AttentionFactor, y.Truncate)
            .Should().Be(("yarn", 2.0, 40960, 16.0, 2.0, (double?)1.5, false));

        cfg["rope_scaling"] = JsonNode.Parse("""{"rope_type": "default"}""");
        Qwen3Config.Load(WriteConfig(cfg)).RopeScaling.Should().BeNull();
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("dynamic")]
    [InlineData("llama3")]
    public void OtherRopeTypesAreNotSupported(string ropeType)
    {
        var cfg = TinyConfig();
        cfg["rope_scaling"] = JsonNode.Parse($$"""{"rope_type": "{{ropeType}}", "factor": 2.0}""");
        string folder = WriteConfig(cfg);
        FluentActions.Invoking(() => Qwen3Config.Load(folder)).Should().Throw<NotSupportedException>()
            .Which.Message.Should().Contain(ropeType).And.Contain(_tmp.File("config.json"));
    }

    [Fact]
    public void YarnWithoutFactorIsNamed()
    {
        var cfg = TinyConfig();
        cfg["rope_scaling"] = JsonNode.Parse("""{"rope_type": "yarn", "original_max_position_embeddings": 32768}""");
        LoadFails(cfg).Message.Should().Contain("'rope_scaling.factor'");
    }
}
