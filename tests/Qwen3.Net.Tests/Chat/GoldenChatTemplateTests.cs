using System.Text.Json;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

public class GoldenChatTemplateTests
{
    private static readonly string GoldenPath = Path.Combine(Fixtures.TokenizerGoldenFolder, "golden-chat-template.jsonl");

    private static readonly Lazy<ChatTemplate> Template =
        new(() => ChatTemplate.FromTokenizerConfig(Path.Combine(Fixtures.TinyModelFolder, "tokenizer_config.json")));

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        var count = File.ReadLines(GoldenPath).Count(l => l.Trim().Length > 0);
        for (var i = 0; i < count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    [Fact]
    public void Golden_file_has_the_six_documented_cases()
    {
        Cases().Count.Should().Be(6);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_golden_case_byte_identically(int lineIndex)
    {
        var line = File.ReadLines(GoldenPath).Where(l => l.Trim().Length > 0).ElementAt(lineIndex);
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        var messages = GoldenJson.ParseMessages(root.GetProperty("messages"));
        var toolsElement = root.GetProperty("tools");
        IReadOnlyList<ToolDefinition>? tools = toolsElement.ValueKind == JsonValueKind.Null
            ? null
            : [.. toolsElement.EnumerateArray().Select(ToolDefinition.FromJsonElement)];
        var thinking = root.GetProperty("enable_thinking");
        bool? enableThinking = thinking.ValueKind == JsonValueKind.Null ? null : thinking.GetBoolean();

        var rendered = Template.Value.Render(messages, tools, root.GetProperty("add_generation_prompt").GetBoolean(), enableThinking);

        rendered.Should().Be(root.GetProperty("rendered").GetString());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_rendered_prompt_tokenizes_to_the_golden_ids(int lineIndex)
    {
        var line = File.ReadLines(GoldenPath).Where(l => l.Trim().Length > 0).ElementAt(lineIndex);
        using var doc = JsonDocument.Parse(line);
        int[] expected = [.. doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];

        var ids = Tokenization.SharedTokenizer.Instance.Encode(doc.RootElement.GetProperty("rendered").GetString()!);

        ids.Should().Equal(expected);
    }

    [Fact]
    public void Golden_messages_round_trip_through_the_message_types()
    {
        var line = File.ReadLines(GoldenPath).Where(l => l.Trim().Length > 0).Last();
        using var doc = JsonDocument.Parse(line);
        var messages = GoldenJson.ParseMessages(doc.RootElement.GetProperty("messages"));

        messages.Select(m => m.Role).Should().Equal(MessageRole.User, MessageRole.Assistant, MessageRole.Tool, MessageRole.Tool);
        messages[1].ToolCalls.Should().HaveCount(2);
        messages[1].ToolCalls![0].Name.Should().Be("get_current_weather");
        messages[1].ToolCalls![1].Arguments.GetProperty("location").GetString().Should().Be("Tokyo");
        messages[2].Content.Should().Contain("\"Beijing\"");
    }
}

/// <summary>Reads OpenAI/transformers-style message JSON (as in the golden files) into the library's types.</summary>
internal static class GoldenJson
{
    public static List<Message> ParseMessages(JsonElement array) => [.. array.EnumerateArray().Select(ParseMessage)];

    private static Message ParseMessage(JsonElement m)
    {
        var role = m.GetProperty("role").GetString() switch
        {
            "system" => MessageRole.System,
            "user" => MessageRole.User,
            "assistant" => MessageRole.Assistant,
            "tool" => MessageRole.Tool,
            var other => throw new InvalidDataException($"Unknown role {other}"),
        };
        var content = m.GetProperty("content").GetString()!;
        var reasoning = m.TryGetProperty("reasoning_content", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        List<ToolCall>? calls = null;
        if (m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array)
        {
            calls = [.. tc.EnumerateArray().Select(c =>
            {
                var function = c.TryGetProperty("function", out var f) ? f : c;
                return new ToolCall(function.GetProperty("name").GetString()!, function.GetProperty("arguments"));
            })];
        }

        return new Message(role, content, reasoning, calls);
    }
}
