using System.Text.Json;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

/// <summary>
/// Qwen3 template behaviours the goldens do not cover. Expected prompts were rendered by Python Jinja2 3.1.6 (configured like
/// transformers) from the same tokenizer_config.json, with the equivalent Python message dicts.
/// </summary>
public class ChatTemplateRenderingTests
{
    private static readonly Lazy<ChatTemplate> Template =
        new(() => ChatTemplate.FromTokenizerConfig(Path.Combine(Fixtures.TinyModelFolder, "tokenizer_config.json")));

    private static ToolCall Call(string name, string argumentsJson) => ToolCall.FromJson(name, argumentsJson);

    [Fact]
    public void Tool_call_arguments_given_as_a_json_string_are_written_verbatim()
    {
        var messages = new[]
        {
            Message.User("Weather?"),
            Message.Assistant("", toolCalls: [ToolCall.FromRawArguments("get_weather", "{\"city\":\"Paris\",  \"unit\":\"c\"}")]),
        };

        Template.Value.Render(messages, addGenerationPrompt: false).Should().Be(ExpectedStringArgs);
    }

    [Fact]
    public void Reasoning_content_given_separately_is_wrapped_in_think_for_the_final_turn()
    {
        var messages = new[] { Message.User("2+2?"), Message.Assistant("4", reasoningContent: "\nSimple sum.\n") };

        Template.Value.Render(messages, addGenerationPrompt: false).Should().Be(ExpectedReasoningSeparate);
    }

    [Fact]
    public void Multi_step_tool_conversation_keeps_think_only_after_the_last_real_user_query()
    {
        var messages = new[]
        {
            Message.System("sys"),
            Message.User("Old question"),
            Message.Assistant("<think>\nold thoughts\n</think>\n\nOld answer"),
            Message.User("Weather in Oslo?"),
            Message.Assistant("Checking.", "Need the tool.", [Call("get_weather", "{\"city\": \"Oslo\"}")]),
            Message.Tool("{\"temp\": -3}"),
            Message.Assistant("", "Got it.", [Call("get_weather", "{\"city\": \"Bergen\"}")]),
            Message.Tool("{\"temp\": 4}"),
            Message.Assistant("<think>\nBoth known.\n</think>\n\nOslo -3, Bergen 4."),
        };

        var rendered = Template.Value.Render(messages, addGenerationPrompt: false);

        rendered.Should().Be(ExpectedMultiStep);
        rendered.Should().NotContain("old thoughts");
    }

    [Fact]
    public void A_user_message_that_is_only_a_tool_response_does_not_count_as_the_last_query()
    {
        var messages = new[]
        {
            Message.User("Q"),
            Message.Assistant("A", "R1"),
            Message.User("<tool_response>\nx\n</tool_response>"),
            Message.Assistant("B", "R2"),
        };

        Template.Value.Render(messages).Should().Be(ExpectedUserToolResponse);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(true)]
    [InlineData(false)]
    public void Enable_thinking_only_changes_the_prompt_when_false(bool? enableThinking)
    {
        var expected = enableThinking switch { null => ExpectedThinkNone, true => ExpectedThinkTrue, false => ExpectedThinkFalse };

        Template.Value.Render([Message.User("hi")], enableThinking: enableThinking).Should().Be(expected);
    }

    [Fact]
    public void Without_generation_prompt_the_prompt_ends_after_the_last_message()
    {
        var rendered = Template.Value.Render([Message.User("hi"), Message.Assistant("hello")], addGenerationPrompt: false, enableThinking: false);

        rendered.Should().Be(ExpectedNoGenPromptFalse);
    }

    [Fact]
    public void Nested_arguments_are_serialized_like_python_json_dumps()
    {
        var args = "{\"q\": \"na\u00efve \\\"quoted\\\" \\\\ back\\nnew\\ttab\\u0001 \u2014 \u65e5\u672c\", " +
                   "\"n\": {\"list\": [1, 2.0, -0.5, 1e21, true, false, null], \"empty\": {}, \"e\": []}}";
        var messages = new[] { Message.User("x"), Message.Assistant("ok", toolCalls: [Call("f", args)]) };

        Template.Value.Render(messages, addGenerationPrompt: false).Should().Be(ExpectedNestedArgs);
    }

    [Fact]
    public void Tools_without_a_system_message_get_their_own_system_turn()
    {
        using var parameters = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {}}");
        var tools = new[] { ToolDefinition.Function("now", "Current time", parameters.RootElement) };

        Template.Value.Render([Message.User("hi")], tools).Should().Be(ExpectedToolsNoSystem);
    }

    [Fact]
    public void Missing_chat_template_is_a_model_load_error_naming_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"qwen3net-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"eos_token\": \"<|im_end|>\"}");
        try
        {
            var act = () => ChatTemplate.FromTokenizerConfig(path);

            act.Should().Throw<Qwen3.Net.ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains("chat_template"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Unreadable_config_is_a_model_load_error()
    {
        var path = Path.Combine(Path.GetTempPath(), $"qwen3net-missing-{Guid.NewGuid():N}.json");

        var act = () => ChatTemplate.FromTokenizerConfig(path);

        act.Should().Throw<Qwen3.Net.ModelLoadException>().Where(e => e.FilePath == path);
    }

    [Fact]
    public void Special_tokens_from_the_config_are_visible_to_templates()
    {
        var path = Path.Combine(Path.GetTempPath(), $"qwen3net-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"eos_token\": {\"content\": \"<|im_end|>\"}, \"chat_template\": \"{{ messages[0].content }}{{ eos_token }}\"}");
        try
        {
            ChatTemplate.FromTokenizerConfig(path).Render([Message.User("x")]).Should().Be("x<|im_end|>");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Non_assistant_messages_reject_reasoning_and_tool_calls()
    {
        var act = () => new Message(MessageRole.User, "x", reasoningContent: "r");

        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Messages_with_equal_tool_calls_are_equal()
    {
        Message.Assistant("a", toolCalls: [Call("f", "{\"x\": 1}")])
            .Should().Be(Message.Assistant("a", toolCalls: [Call("f", "{\"x\":1}")]));
    }

    private const string ExpectedStringArgs = "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\",  \"unit\":\"c\"}}\n</tool_call><|im_end|>\n";
    private const string ExpectedReasoningSeparate = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nSimple sum.\n</think>\n\n4<|im_end|>\n";
    private const string ExpectedMultiStep = "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nOld question<|im_end|>\n<|im_start|>assistant\nOld answer<|im_end|>\n<|im_start|>user\nWeather in Oslo?<|im_end|>\n<|im_start|>assistant\n<think>\nNeed the tool.\n</think>\n\nChecking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": -3}\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\nGot it.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bergen\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 4}\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\nBoth known.\n</think>\n\nOslo -3, Bergen 4.<|im_end|>\n";
    private const string ExpectedUserToolResponse = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR1\n</think>\n\nA<|im_end|>\n<|im_start|>user\n<tool_response>\nx\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\nR2\n</think>\n\nB<|im_end|>\n<|im_start|>assistant\n";
    private const string ExpectedThinkNone = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    private const string ExpectedThinkTrue = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    private const string ExpectedThinkFalse = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    private const string ExpectedNoGenPromptFalse = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nhello<|im_end|>\n";
    private const string ExpectedNestedArgs = "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nok\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"na\u00efve \\\"quoted\\\" \\\\ back\\nnew\\ttab\\u0001 \u2014 \u65e5\u672c\", \"n\": {\"list\": [1, 2.0, -0.5, 1e+21, true, false, null], \"empty\": {}, \"e\": []}}}\n</tool_call><|im_end|>\n";
    private const string ExpectedToolsNoSystem = "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"now\", \"description\": \"Current time\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
}
