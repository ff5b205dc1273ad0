using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen3.Net.Chat;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.ExtensionsAI;

public sealed class FunctionInvocationTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    [Fact]
    public async Task The_function_invocation_pipeline_sends_a_history_with_the_call_and_its_result()
    {
        int invocations = 0;
        var function = AIFunctionFactory.Create((string city) => { invocations++; return $"Sunny in {city}"; }, "get_weather", "The current weather of a city.");
        using var client = new ChatClientBuilder(new Qwen3ChatClient(fixture.Model)).UseFunctionInvocation().Build();
        List<ChatMessage> history =
        [
            new(ChatRole.User, "What is the weather in Paris?"),
            new(ChatRole.Assistant, [new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Paris" })]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "Sunny in Paris")]),
        ];
        var options = new ChatOptions { Tools = [function], Temperature = 0, MaxOutputTokens = 8, AdditionalProperties = new() { ["enable_thinking"] = false } };

        var response = await client.GetResponseAsync(history, options);

        var expectedPrompt = new ChatGenerator(fixture.Model).EncodePrompt(
            [
                Message.User("What is the weather in Paris?"),
                Message.Assistant("", toolCalls: [ToolCall.FromJson("get_weather", """{"city":"Paris"}""")]),
                Message.Tool("Sunny in Paris"),
            ],
            new ChatGenerationOptions { ThinkingMode = ThinkingMode.Disabled, Tools = [ToolDefinition.Function("get_weather", "The current weather of a city.", function.JsonSchema)] });
        response.Usage!.InputTokenCount.Should().Be(expectedPrompt.Length, "the call and its result are in the prompt");
        response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Should().BeEmpty("the random model answers with text");
        invocations.Should().Be(0);
        response.FinishReason.Should().Be(ChatFinishReason.Length);
        response.Messages.Should().ContainSingle().Which.Role.Should().Be(ChatRole.Assistant);
    }

    [Fact]
    public void A_function_result_object_reaches_the_model_as_json_text()
    {
        var result = JsonSerializer.SerializeToElement(new Dictionary<string, object?> { ["temp"] = 21, ["sky"] = "clear" });
        using var client = new Qwen3ChatClient(fixture.Model);
        var request = Qwen3ChatMapper.ToRequest(client, [new ChatMessage(ChatRole.Tool, [new FunctionResultContent("call_1", result)])], null, client.ModelId);
        request.Messages.Should().Equal(Message.Tool("""{"temp":21,"sky":"clear"}"""));
    }

    [Fact]
    public void A_function_result_of_text_contents_reaches_the_model_as_their_text_and_media_throw()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        IReadOnlyList<Message> Map(object result) =>
            Qwen3ChatMapper.ToRequest(client, [new ChatMessage(ChatRole.Tool, [new FunctionResultContent("call_1", result)])], null, client.ModelId).Messages;

        Map(new TextContent("Sunny")).Should().Equal(Message.Tool("Sunny"));
        Map(new List<AIContent> { new TextContent("Sunny, "), new TextContent("21 °C") }).Should().Equal(Message.Tool("Sunny, 21 °C"));
        var image = () => Map(new DataContent(new byte[] { 1 }, "image/png"));
        image.Should().Throw<NotSupportedException>().WithMessage("*DataContent*");
    }
}
