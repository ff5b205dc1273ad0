using System.ClientModel;
using System.ComponentModel;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Qwen3.Net.ScriptedModel;

namespace Qwen3.Net.Tests.Server;

/// <summary>Reasoning, answers and tool calls end to end, on the scripted model: the output is known, so every field is checked.</summary>
public sealed class ScriptedServerTests : IClassFixture<ScriptedServerFixture>
{
    private const string Weather = """{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}""";
    private readonly ScriptedServerFixture _fixture;
    private readonly HttpClient _http = new();

    public ScriptedServerTests(ScriptedServerFixture fixture)
    {
        _fixture = fixture;
    }

    private Uri Completions => new(_fixture.Server.BaseUri, "v1/chat/completions");

    private ChatClient Client => new("scripted", new ApiKeyCredential("EMPTY"), new OpenAIClientOptions { Endpoint = new Uri(_fixture.Server.BaseUri, "v1") });

    [Fact]
    public async Task ThinkingOnReturnsTheReasoningApartFromTheAnswer()
    {
        var json = await PostAsync("""{"model": "scripted", "messages": [{"role": "user", "content": "Hi there!"}]}""");
        var message = json["choices"]![0]!["message"]!;
        message["reasoning_content"]!.GetValue<string>().Should().Be(Script.ChatReasoning);
        message["content"]!.GetValue<string>().Should().Be(Script.ChatAnswer);
        json["choices"]![0]!["finish_reason"]!.GetValue<string>().Should().Be("stop");
        json["usage"]!["completion_tokens_details"]!["reasoning_tokens"]!.GetValue<int>().Should().BeGreaterThan(0);
    }

    [Theory]
    [InlineData(""", "enable_thinking": false""")]
    [InlineData(""", "chat_template_kwargs": {"enable_thinking": false}""")]
    [InlineData(""", "return_reasoning": false""")]
    public async Task ThinkingOffOrReturnReasoningFalseGivesNoReasoning(string extra)
    {
        var json = await PostAsync($$"""{"model": "scripted", "messages": [{"role": "user", "content": "Hi there!"}]{{extra}}}""");
        var message = json["choices"]![0]!["message"]!.AsObject();
        message.ContainsKey("reasoning_content").Should().BeFalse();
        message["content"]!.GetValue<string>().Should().Be(Script.ChatAnswer);
    }

    [Fact]
    public async Task StreamSendsReasoningDeltasThenAnswerDeltas()
    {
        var chunks = await StreamAsync("""{"model": "scripted", "stream": true, "messages": [{"role": "user", "content": "Hi there!"}]}""");
        var deltas = chunks.Select(c => c["choices"]![0]!["delta"]!.AsObject()).ToList();
        string Joined(string field) => string.Concat(deltas.Select(d => d.TryGetPropertyValue(field, out var v) ? v!.GetValue<string>() : ""));

        Joined("reasoning_content").Should().Be(Script.ChatReasoning);
        Joined("content").Should().Be(Script.ChatAnswer);
        deltas.Count(d => d.ContainsKey("content") && d["content"]!.GetValue<string>().Length > 0).Should().BeGreaterThan(5, "the answer streams token by token");
        int lastReasoning = deltas.FindLastIndex(d => d.ContainsKey("reasoning_content"));
        int firstAnswer = deltas.FindIndex(d => d.ContainsKey("content") && d["content"]!.GetValue<string>().Length > 0);
        lastReasoning.Should().BeLessThan(firstAnswer);
        chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>().Should().Be("stop");
    }

    [Fact]
    public async Task StreamedToolCallSendsItsNameThenArgumentFragmentsAsTheyAreWritten()
    {
        var chunks = await StreamAsync($$"""{"model": "scripted", "stream": true, "enable_thinking": false, "tools": [{{Weather}}], "messages": [{"role": "user", "content": "Weather in Paris?"}]}""");
        var calls = chunks.Select(c => c["choices"]![0]!["delta"]!["tool_calls"]).Where(d => d is not null).Select(d => d!.AsArray().Single()!).ToList();

        calls.Count.Should().BeGreaterThan(2, "the arguments arrive in several fragments");
        var first = calls[0];
        first["id"]!.GetValue<string>().Should().StartWith("call_");
        first["type"]!.GetValue<string>().Should().Be("function");
        first["function"]!["name"]!.GetValue<string>().Should().Be(Script.ToolName);
        calls.Should().OnlyContain(c => c["index"]!.GetValue<int>() == 0);
        calls.Skip(1).Should().OnlyContain(c => c["id"] == null && c["function"]!["name"] == null);
        string.Concat(calls.Select(c => c["function"]!["arguments"]!.GetValue<string>())).Should().Be(Script.ToolArgumentsJson);
        chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>().Should().Be("tool_calls");
    }

    [Fact]
    public async Task MicrosoftExtensionsAIOpenAIClientAssemblesTheStreamedCall()
    {
        var tool = AIFunctionFactory.CreateDeclaration(Script.ToolName, "Current weather of a city.",
            JsonDocument.Parse("""{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}""").RootElement);
        var options = new ChatOptions { Tools = [tool] };

        var response = await Client.AsIChatClient().GetStreamingResponseAsync("What is the weather in Paris?", options).ToChatResponseAsync();

        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Should().ContainSingle().Subject;
        call.Name.Should().Be(Script.ToolName);
        call.Arguments!["city"]!.ToString().Should().Be("Paris");
        response.FinishReason.Should().Be(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls);
    }

    [Fact]
    public async Task OpenAIClientToolRoundTripEndsWithTheFinalAnswer()
    {
        var tool = ChatTool.CreateFunctionTool(Script.ToolName, "Current weather of a city.",
            BinaryData.FromString("""{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        var messages = new List<OpenAI.Chat.ChatMessage> { new UserChatMessage("What is the weather in Paris?") };

        ChatCompletion call = await Client.CompleteChatAsync(messages, options);
        call.FinishReason.Should().Be(OpenAI.Chat.ChatFinishReason.ToolCalls);
        var toolCall = call.ToolCalls.Should().ContainSingle().Subject;
        toolCall.FunctionName.Should().Be(Script.ToolName);
        JsonDocument.Parse(toolCall.FunctionArguments).RootElement.GetProperty("city").GetString().Should().Be("Paris");

        messages.Add(new AssistantChatMessage(call));
        messages.Add(new ToolChatMessage(toolCall.Id, """{"temperature": 21, "condition": "sunny"}"""));
        ChatCompletion answer = await Client.CompleteChatAsync(messages, options);
        answer.FinishReason.Should().Be(OpenAI.Chat.ChatFinishReason.Stop);
        answer.Content.Should().ContainSingle().Which.Text.Should().Be(Script.FinalAnswer);
    }

    [Fact]
    public async Task MicrosoftExtensionsAIAgentCallsTheFunctionAndAnswers()
    {
        string? askedCity = null;
        var getWeather = AIFunctionFactory.Create(
            ([Description("The city")] string city) =>
            {
                askedCity = city;
                return new { temperature = 21, condition = "sunny" };
            },
            Script.ToolName,
            "Current weather of a city.");
        IChatClient agent = Client.AsIChatClient().AsBuilder().UseFunctionInvocation().Build();

        var response = await agent.GetResponseAsync("What is the weather in Paris?", new ChatOptions { Tools = [getWeather] });

        askedCity.Should().Be("Paris");
        response.Text.Should().Be(Script.FinalAnswer);
    }

    private async Task<JsonNode> PostAsync(string body)
    {
        using var response = await _http.PostAsync(Completions, new StringContent(body));
        string text = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue(text);
        return JsonNode.Parse(text)!;
    }

    /// <summary>The stream's chunks with choices, read as server-sent events up to <c>[DONE]</c>.</summary>
    private async Task<List<JsonNode>> StreamAsync(string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Completions) { Content = new StringContent(body) };
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var chunks = new List<JsonNode>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            line.Should().StartWith("data: ");
            string data = line["data: ".Length..];
            if (data == "[DONE]")
            {
                return chunks;
            }

            var chunk = JsonNode.Parse(data)!;
            if (chunk["choices"]!.AsArray().Count > 0)
            {
                chunks.Add(chunk);
            }
        }

        throw new InvalidDataException("The stream ended without [DONE].");
    }
}
