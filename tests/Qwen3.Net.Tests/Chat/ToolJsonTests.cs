using System.Text.Json;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

/// <summary>
/// Found by the jinja-data fuzz target (fuzz/corpus/jinja-data/bug-invalid-utf8-in-tool-json): a JsonDocument parsed from
/// bytes checks UTF-8 only when text is read, so tool JSON with invalid UTF-8 was accepted and the render threw
/// InvalidOperationException. It is now rejected where it enters the API.
/// </summary>
public class ToolJsonTests
{
    private static JsonDocument ParseWithInvalidUtf8(string json)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(json);
        bytes[Array.IndexOf(bytes, (byte)'#')] = 0x8A;
        return JsonDocument.Parse(bytes);
    }

    [Theory]
    [InlineData("""{"type": "function", "function": {"name": "f", "parameters": {"properties": {"loc#": {"type": "string"}}}}}""")]
    [InlineData("""{"type": "function", "function": {"name": "f", "description": "a#b"}}""")]
    public void A_tool_definition_with_invalid_utf8_is_rejected(string json)
    {
        using var document = ParseWithInvalidUtf8(json);
        FluentActions.Invoking(() => ToolDefinition.FromJsonElement(document.RootElement))
            .Should().Throw<ArgumentException>().WithParameterName("json").WithMessage("*not valid UTF-8*");
    }

    [Fact]
    public void Tool_call_arguments_with_invalid_utf8_are_rejected()
    {
        using var document = ParseWithInvalidUtf8("""{"city": ["Par#s"]}""");
        FluentActions.Invoking(() => new ToolCall("f", document.RootElement))
            .Should().Throw<ArgumentException>().WithParameterName("arguments").WithMessage("*not valid UTF-8*");
    }

    [Fact]
    public void Valid_tool_json_renders()
    {
        using var tool = JsonDocument.Parse("""{"type": "function", "function": {"name": "f\u00e9", "parameters": {"type": "object"}}}""");
        using var arguments = JsonDocument.Parse("""{"city": ["Par\u00eds"]}""");
        var template = ChatTemplate.FromTokenizerConfig(Path.Combine(Fixtures.TinyModelFolder, "tokenizer_config.json"));
        string prompt = template.Render(
            [Message.User("hi"), Message.Assistant("", toolCalls: [new ToolCall("f", arguments.RootElement)])],
            [ToolDefinition.FromJsonElement(tool.RootElement)]);
        prompt.Should().Contain("\"name\": \"fé\"").And.Contain("París");
    }
}
