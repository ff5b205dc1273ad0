using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen3.Net.Chat;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.ExtensionsAI;

public sealed class Qwen3ChatMapperTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.User, "Hello!")];

    private Qwen3ChatRequest Map(ChatOptions? options, IEnumerable<ChatMessage>? messages = null)
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        return Qwen3ChatMapper.ToRequest(client, messages ?? Hello, options, client.ModelId);
    }

    [Fact]
    public void Without_options_the_turn_thinks_with_the_model_cards_sampling()
    {
        var request = Map(null);
        request.Options.ThinkingMode.Should().Be(ThinkingMode.Enabled);
        request.Options.Sampling.Should().BeNull("ChatGenerator then takes the model card's defaults for the mode");
        request.IncludeReasoning.Should().BeTrue();

        Map(new ChatOptions()).Options.Sampling.Should().Be(SamplingOptions.ForThinking);
        var noThinking = Map(new ChatOptions { AdditionalProperties = new() { ["enable_thinking"] = false } });
        noThinking.Options.ThinkingMode.Should().Be(ThinkingMode.Disabled);
        noThinking.Options.Sampling.Should().Be(SamplingOptions.ForNonThinking);
    }

    [Fact]
    public void Every_sampling_option_overrides_the_model_cards_default()
    {
        var request = Map(new ChatOptions
        {
            Temperature = 0.3f,
            TopP = 0.5f,
            TopK = 7,
            PresencePenalty = 1.5f,
            FrequencyPenalty = 0f,
            Seed = -1,
            MaxOutputTokens = 99,
            StopSequences = ["END", "STOP"],
            AdditionalProperties = new() { ["min_p"] = 0.05, ["repetition_penalty"] = 1.1f, ["enable_thinking"] = "false" },
        });

        request.Options.ThinkingMode.Should().Be(ThinkingMode.Disabled);
        request.Options.Sampling.Should().Be(SamplingOptions.ForNonThinking with
        {
            Temperature = 0.3f,
            TopP = 0.5f,
            TopK = 7,
            PresencePenalty = 1.5f,
            Seed = ulong.MaxValue,
            MaxNewTokens = 99,
            StopStrings = ["END", "STOP"],
            MinP = 0.05f,
            RepetitionPenalty = 1.1f,
        });
    }

    [Fact]
    public void Reasoning_options_switch_thinking_and_hide_the_reasoning()
    {
        Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.None } }).Options.ThinkingMode.Should().Be(ThinkingMode.Disabled);
        Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.Low } }).Options.ThinkingMode.Should().Be(ThinkingMode.Enabled);
        Map(new ChatOptions { Reasoning = new ReasoningOptions { Output = ReasoningOutput.None } }).IncludeReasoning.Should().BeFalse();

        var contradiction = () => Map(new ChatOptions
        {
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.High },
            AdditionalProperties = new() { ["enable_thinking"] = false },
        });
        contradiction.Should().Throw<ArgumentException>().WithMessage("*Reasoning.Effort*enable_thinking*");
    }

    [Fact]
    public void An_additional_property_of_the_wrong_type_throws_naming_its_key()
    {
        var act = () => Map(new ChatOptions { AdditionalProperties = new() { ["min_p"] = "a lot" } });
        act.Should().Throw<ArgumentException>().WithMessage("*min_p*");
    }

    [Fact]
    public void An_invalid_sampling_value_throws_naming_it()
    {
        var act = () => Map(new ChatOptions { Temperature = -1 });
        act.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Temperature");
    }

    public static TheoryData<string, ChatOptions> UnsupportedOptions => new()
    {
        { "FrequencyPenalty", new ChatOptions { FrequencyPenalty = 0.5f } },
        { "ConversationId", new ChatOptions { ConversationId = "conversation-1" } },
        { "ContinuationToken", new ChatOptions { ContinuationToken = ResponseContinuationToken.FromBytes(new byte[] { 1 }) } },
        { "AllowMultipleToolCalls = false is supported with ToolMode RequireAny / RequireSpecific only", new ChatOptions { AllowMultipleToolCalls = false } },
        { "ModelId 'Qwen3-32B'", new ChatOptions { ModelId = "Qwen3-32B" } },
        { "HostedWebSearchTool", new ChatOptions { Tools = [new HostedWebSearchTool()] } },
        { "RawRepresentationFactory returned String", new ChatOptions { RawRepresentationFactory = _ => "raw" } },
    };

    [Theory]
    [MemberData(nameof(UnsupportedOptions))]
    public void An_option_that_cannot_be_honoured_throws_naming_it(string name, ChatOptions options)
    {
        var act = () => Map(options);
        act.Should().Throw<NotSupportedException>().WithMessage($"*{name}*");
    }

    [Fact]
    public void Json_response_formats_and_required_tool_modes_map_to_constraints()
    {
        Map(new ChatOptions { ResponseFormat = ChatResponseFormat.Json }).Options.ResponseFormat.Should().BeSameAs(Generation.ResponseFormat.JsonObject);

        var schema = JsonDocument.Parse("""{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""").RootElement;
        var format = Map(new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "numbers") }).Options.ResponseFormat!;
        format.Kind.Should().Be(Generation.ResponseFormatKind.JsonSchema);
        format.Name.Should().Be("numbers");
        JsonElement.DeepEquals(format.Schema!.Value, schema).Should().BeTrue();

        var function = AIFunctionFactory.Create((string city) => city, "get_weather", "Weather.");
        var any = Map(new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = false }).Options;
        any.ToolChoice.Should().Be(ToolChoice.Required);
        any.ParallelToolCalls.Should().BeFalse();
        Map(new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireSpecific("get_weather") }).Options.ToolChoice.Should().Be(ToolChoice.Function("get_weather"));
    }

    [Fact]
    public void A_schema_that_cannot_constrain_generation_throws_naming_the_keyword()
    {
        var schema = JsonDocument.Parse("""{"type":"object","not":{}}""").RootElement;
        var act = () => Map(new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema) });
        act.Should().Throw<Generation.Constraints.SchemaException>().Which.Pointer.Should().Be("/not");
    }

    [Fact]
    public void Options_that_ask_for_nothing_special_are_accepted()
    {
        var request = Map(new ChatOptions
        {
            ResponseFormat = ChatResponseFormat.Text,
            ToolMode = ChatToolMode.Auto,
            ModelId = "tiny-qwen3",
            AllowMultipleToolCalls = true,
            AllowBackgroundResponses = true,
        });
        request.Options.Sampling.Should().Be(SamplingOptions.ForThinking);
    }

    [Fact]
    public void Functions_become_tool_definitions_unless_the_tool_mode_is_none()
    {
        var function = AIFunctionFactory.Create((string city) => $"Sunny in {city}", "get_weather", "The current weather of a city.");
        var request = Map(new ChatOptions { Tools = [function] });
        request.Options.Tools.Should().Equal(ToolDefinition.Function("get_weather", "The current weather of a city.", function.JsonSchema));
        request.Options.Tools[0].Json.GetProperty("function").GetProperty("parameters").GetProperty("properties").TryGetProperty("city", out _).Should().BeTrue();

        Map(new ChatOptions { Tools = [function], ToolMode = ChatToolMode.None }).Options.Tools.Should().BeEmpty();
    }

    [Fact]
    public void A_raw_representation_is_the_base_the_options_override()
    {
        var tool = ToolDefinition.FromJson("""{"type":"function","function":{"name":"lookup","description":"d","parameters":{}}}""");
        var raw = new ChatGenerationOptions { ThinkingMode = ThinkingMode.Disabled, Sampling = SamplingOptions.Greedy, Tools = [tool] };
        var request = Map(new ChatOptions { RawRepresentationFactory = _ => raw, MaxOutputTokens = 5 });
        request.Options.ThinkingMode.Should().Be(ThinkingMode.Disabled);
        request.Options.Sampling.Should().Be(SamplingOptions.Greedy with { MaxNewTokens = 5 });
        request.Options.Tools.Should().Equal(tool);
    }

    [Fact]
    public void Every_content_kind_maps_to_the_qwen3_message_it_means()
    {
        var arguments = new Dictionary<string, object?> { ["city"] = "Paris", ["days"] = 2 };
        ChatMessage[] messages =
        [
            new(ChatRole.System, "Be brief."),
            new(ChatRole.User, [new TextContent("What is the weather "), new TextContent("in Paris?")]),
            new(ChatRole.Assistant, [new TextReasoningContent("I should call the tool."), new TextContent("Let me check."), new FunctionCallContent("call_1", "get_weather", arguments)]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "Sunny"), new FunctionResultContent("call_2", JsonDocument.Parse("""{"temp":21}""").RootElement), new FunctionResultContent("call_3", null)]),
            new(ChatRole.Assistant, "It is sunny."),
            new(ChatRole.User, "Thanks!"),
        ];

        var request = Map(new ChatOptions { Instructions = "Answer in French." }, messages);

        request.Messages.Should().Equal(
            Message.System("Answer in French."),
            Message.System("Be brief."),
            Message.User("What is the weather in Paris?"),
            Message.Assistant("Let me check.", "I should call the tool.", [ToolCall.FromJson("get_weather", """{"city":"Paris","days":2}""")]),
            Message.Tool("Sunny"),
            Message.Tool("""{"temp":21}"""),
            Message.Tool("null"),
            Message.Assistant("It is sunny."),
            Message.User("Thanks!"));
    }

    public static TheoryData<string, ChatMessage> UnsupportedMessages => new()
    {
        { "DataContent in a 'user' message", new ChatMessage(ChatRole.User, [new DataContent(new byte[] { 1, 2 }, "image/png")]) },
        { "UriContent in a 'user' message", new ChatMessage(ChatRole.User, [new UriContent("https://example.com/cat.png", "image/png")]) },
        { "TextReasoningContent in a 'user' message", new ChatMessage(ChatRole.User, [new TextReasoningContent("hmm")]) },
        { "FunctionCallContent in a 'tool' message", new ChatMessage(ChatRole.Tool, [new FunctionCallContent("c", "f")]) },
        { "FunctionResultContent in a 'user' message", new ChatMessage(ChatRole.User, [new FunctionResultContent("c", "r")]) },
        { "ErrorContent in a 'assistant' message", new ChatMessage(ChatRole.Assistant, [new ErrorContent("boom")]) },
        { "chat role 'developer'", new ChatMessage(new ChatRole("developer"), "Be brief.") },
    };

    [Theory]
    [MemberData(nameof(UnsupportedMessages))]
    public void A_content_the_model_cannot_read_throws_naming_its_type(string name, ChatMessage message)
    {
        var act = () => Map(null, [message]);
        act.Should().Throw<NotSupportedException>().WithMessage($"*{name}*");
    }

    [Fact]
    public void A_parsed_tool_call_becomes_a_function_call_that_maps_back_to_the_same_call()
    {
        var call = ToolCall.FromJson("get_weather", """{"city":"Paris","days":2,"units":{"temp":"C"}}""");
        var first = Qwen3ChatMapper.ToFunctionCall(call);
        var second = Qwen3ChatMapper.ToFunctionCall(call);

        first.Name.Should().Be("get_weather");
        first.CallId.Should().StartWith("call_").And.NotBe(second.CallId);
        first.Exception.Should().BeNull();
        first.Arguments.Should().NotBeNull();
        first.Arguments!.Keys.Should().Equal("city", "days", "units");
        ((JsonElement)first.Arguments["city"]!).GetString().Should().Be("Paris");

        var back = Map(null, [new ChatMessage(ChatRole.Assistant, [first])]);
        back.Messages[0].ToolCalls.Should().Equal(call);
    }

    [Fact]
    public void Arguments_given_as_a_json_string_are_parsed_and_unparseable_ones_reported()
    {
        var fromString = Qwen3ChatMapper.ToFunctionCall(ToolCall.FromRawArguments("f", """{"a":1}"""));
        fromString.Exception.Should().BeNull();
        ((JsonElement)fromString.Arguments!["a"]!).GetInt32().Should().Be(1);

        var broken = Qwen3ChatMapper.ToFunctionCall(ToolCall.FromRawArguments("f", "not json"));
        broken.Name.Should().Be("f");
        broken.Exception.Should().NotBeNull();
    }

    [Fact]
    public void A_malformed_tool_call_stays_text_in_its_tags_with_the_reason()
    {
        var text = Qwen3ChatMapper.ToMalformedText(new MalformedToolCall("{\"name\": ", "The tool call is not valid JSON."));
        text.Text.Should().Be("<tool_call>{\"name\": </tool_call>");
        text.AdditionalProperties!["malformed_tool_call_error"].Should().Be("The tool call is not valid JSON.");
    }
}
