using System.Numerics.Tensors;
using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Tests.Chat;
using Qwen3.Net.Tests.Model;
using Qwen3.Net.Tests.Tokenization;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>
/// The tiny model loaded from its GGUF conversion computes exactly what the safetensors folder computes, and its
/// tokenizer and chat template, rebuilt from the GGUF metadata alone, match tokenizer.json's goldens.
/// </summary>
public sealed class GgufModelTests(TinyGgufModel gguf, TinyModel folder) : IClassFixture<TinyGgufModel>, IClassFixture<TinyModel>
{
    public static TheoryData<string> CaseNames => GoldenLogitsTests.CaseNames;

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Logits_equal_the_safetensors_model_bit_for_bit(string name)
    {
        var golden = folder.Cases[name];
        using var fromGguf = gguf.Model.CreateContext();
        using var fromFolder = folder.Model.CreateContext();

        float[] expected = fromFolder.Evaluate(golden.PromptIds).ToArray();
        float[] actual = fromGguf.Evaluate(golden.PromptIds).ToArray();

        actual.Should().Equal(expected);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Logits_and_greedy_continuation_match_the_goldens(string name)
    {
        var golden = folder.Cases[name];
        float[] stored = TinyModel.ReadFloats(golden.LogitsFile);
        int vocab = gguf.Model.Config.VocabSize;
        int lastRow = Array.IndexOf(golden.LogitPositions, golden.PromptIds.Length - 1);
        lastRow.Should().BeGreaterThanOrEqualTo(0);
        using var ctx = gguf.Model.CreateContext();

        var logits = ctx.Evaluate(golden.PromptIds).ToArray();
        for (int i = 0; i < vocab; i++)
        {
            logits[i].Should().BeApproximately(stored[(lastRow * vocab) + i], 1e-3f, $"logit {i}");
        }

        var generated = new List<int>();
        for (int step = 0; step < golden.GreedyNewIds.Length; step++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            generated.Add(next);
            if (step < golden.GreedyNewIds.Length - 1)
            {
                logits = ctx.Evaluate([next]).ToArray();
            }
        }

        generated.Should().Equal(golden.GreedyNewIds);
    }

    [Fact]
    public void Config_equals_config_json()
    {
        var expected = folder.Model.Config;
        var actual = gguf.Model.Config;
        actual.EosTokenIds.Should().Equal(expected.EosTokenIds);
        (actual with { EosTokenIds = expected.EosTokenIds, TorchDtype = expected.TorchDtype }).Should().Be(expected);
        gguf.Model.Folder.Should().Be(gguf.Path);
    }

    [Fact]
    public void Tokenizer_encodes_and_decodes_every_golden_case_as_tokenizer_json()
    {
        var tokenizer = gguf.Model.Tokenizer;
        tokenizer.VocabularySize.Should().Be(SharedTokenizer.Instance.VocabularySize);
        GoldenTokenization.Cases.Should().HaveCount(265);
        foreach (var golden in GoldenTokenization.Cases)
        {
            tokenizer.Encode(golden.Text).Should().Equal(golden.Ids, "the GGUF tokenizer encodes case '{0}' like tokenizer.json", golden.Text);
            tokenizer.Decode(golden.Ids).Should().Be(golden.Decoded);
        }
    }

    [Fact]
    public void Special_token_ids_equal_tokenizer_json()
    {
        var expected = SharedTokenizer.Instance;
        var actual = gguf.Model.Tokenizer;
        new[] { actual.EndOfTextId, actual.ImStartId, actual.ImEndId, actual.ThinkStartId, actual.ThinkEndId, actual.ToolCallStartId, actual.ToolCallEndId }
            .Should().Equal(expected.EndOfTextId, expected.ImStartId, expected.ImEndId, expected.ThinkStartId, expected.ThinkEndId, expected.ToolCallStartId, expected.ToolCallEndId);
    }

    [Fact]
    public void Chat_template_from_the_gguf_renders_the_golden_prompts()
    {
        var template = gguf.Model.LoadChatTemplate();
        string path = Path.Combine(Fixtures.TokenizerGoldenFolder, "golden-chat-template.jsonl");
        var lines = File.ReadLines(path).Where(l => l.Trim().Length > 0).ToList();
        lines.Should().HaveCount(6);
        foreach (string line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var tools = root.GetProperty("tools");
            var thinking = root.GetProperty("enable_thinking");
            string rendered = template.Render(
                GoldenJson.ParseMessages(root.GetProperty("messages")),
                tools.ValueKind == JsonValueKind.Null ? null : [.. tools.EnumerateArray().Select(ToolDefinition.FromJsonElement)],
                root.GetProperty("add_generation_prompt").GetBoolean(),
                thinking.ValueKind == JsonValueKind.Null ? null : thinking.GetBoolean());
            rendered.Should().Be(root.GetProperty("rendered").GetString());
        }
    }

    [Fact]
    public void Chat_generator_uses_the_template_of_the_gguf()
    {
        Message[] messages = [Message.System("Be brief."), Message.User("Hello")];
        new ChatGenerator(gguf.Model).EncodePrompt(messages).Should().Equal(new ChatGenerator(folder.Model).EncodePrompt(messages));
    }

    [Fact]
    public void A_folder_holding_one_gguf_file_loads_it()
    {
        using var temp = new TempFolder();
        File.Copy(gguf.Path, temp.File("model.gguf"));
        using var model = Qwen3Model.Load(temp.Path, new Qwen3ModelOptions { ThreadCount = 1 });
        model.Folder.Should().Be(temp.File("model.gguf"));
        model.Config.Should().BeEquivalentTo(gguf.Model.Config);
    }
}
