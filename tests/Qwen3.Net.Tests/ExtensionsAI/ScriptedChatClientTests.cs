using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.ScriptedModel;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.ExtensionsAI;

/// <summary>End to end on the scripted model, whose output is known: reasoning, answers, a tool call and the answer after its result.</summary>
public sealed class ScriptedChatClientTests(ScriptedModelFixture fixture) : IClassFixture<ScriptedModelFixture>
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.User, "Hello!")];

    // Longer than every script, so a turn that leaves its script ends with Length and fails.
    private static ChatOptions Options(bool thinking = true, IList<AITool>? tools = null) => new()
    {
        Temperature = 0,
        MaxOutputTokens = 64,
        Tools = tools,
        AdditionalProperties = new() { ["enable_thinking"] = thinking },
    };

    [Fact]
    public async Task Reasoning_and_answer_stream_as_their_own_contents()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var updates = await client.GetStreamingResponseAsync(Hello, Options()).ToListAsync();

        string.Concat(updates.SelectMany(u => u.Contents.OfType<TextReasoningContent>()).Select(c => c.Text)).Should().Be(Script.ChatReasoning);
        string.Concat(updates.Select(u => u.Text)).Should().Be(Script.ChatAnswer);
        updates[^1].FinishReason.Should().Be(ChatFinishReason.Stop);
    }

    [Fact]
    public async Task Thinking_off_answers_without_reasoning()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var response = await client.GetResponseAsync(Hello, Options(thinking: false));

        response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Should().BeEmpty();
        response.Text.Should().Be(Script.ChatAnswer);
        response.FinishReason.Should().Be(ChatFinishReason.Stop);
    }

    [Fact]
    public async Task A_tool_call_streams_as_a_function_call_and_finishes_with_ToolCalls()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var weather = AIFunctionFactory.Create((string city) => "Sunny", Script.ToolName, "Current weather of a city.");
        var updates = await client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Weather in Paris?")], Options(tools: [weather])).ToListAsync();

        string.Concat(updates.SelectMany(u => u.Contents.OfType<TextReasoningContent>()).Select(c => c.Text)).Should().Be(Script.ToolCallReasoning);
        var call = updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>().Should().ContainSingle().Subject;
        call.Name.Should().Be(Script.ToolName);
        call.CallId.Should().NotBeNullOrEmpty();
        call.Arguments!.Keys.Should().Equal("city");
        ((JsonElement)call.Arguments["city"]!).GetString().Should().Be("Paris");
        string.Concat(updates.Select(u => u.Text)).Should().BeEmpty();
        updates[^1].FinishReason.Should().Be(ChatFinishReason.ToolCalls);
    }

    [Fact]
    public async Task The_function_invocation_loop_calls_the_tool_and_answers_after_its_result()
    {
        var cities = new List<string>();
        var weather = AIFunctionFactory.Create((string city) => { cities.Add(city); return "Sunny, 21 °C"; }, Script.ToolName, "Current weather of a city.");
        using var client = new ChatClientBuilder(new Qwen3ChatClient(fixture.Model)).UseFunctionInvocation().Build();
        List<ChatMessage> history = [new(ChatRole.User, "What is the weather in Paris?")];

        var response = await client.GetResponseAsync(history, Options(tools: [weather]));

        cities.Should().Equal("Paris");
        response.Messages.Select(m => m.Role).Should().Equal(ChatRole.Assistant, ChatRole.Tool, ChatRole.Assistant);
        var call = response.Messages[0].Contents.OfType<FunctionCallContent>().Should().ContainSingle().Subject;
        var result = response.Messages[1].Contents.OfType<FunctionResultContent>().Should().ContainSingle().Subject;
        result.CallId.Should().Be(call.CallId);
        response.Messages[2].Contents.OfType<TextReasoningContent>().Single().Text.Should().Be(Script.FinalReasoning);
        response.Messages[2].Text.Should().Be(Script.FinalAnswer);
        response.FinishReason.Should().Be(ChatFinishReason.Stop);

    }

    [Fact]
    public async Task The_streaming_function_invocation_loop_streams_the_call_the_result_and_the_answer()
    {
        var weather = AIFunctionFactory.Create((string city) => "Sunny, 21 °C", Script.ToolName, "Current weather of a city.");
        using var client = new ChatClientBuilder(new Qwen3ChatClient(fixture.Model)).UseFunctionInvocation().Build();

        var updates = await client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "What is the weather in Paris?")], Options(tools: [weather])).ToListAsync();

        updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>().Should().ContainSingle().Which.Name.Should().Be(Script.ToolName);
        updates.SelectMany(u => u.Contents).OfType<FunctionResultContent>().Should().ContainSingle().Which.Result.Should().NotBeNull();
        string.Concat(updates.Select(u => u.Text)).Should().Be(Script.FinalAnswer);
        updates.Where(u => u.FinishReason is not null).Select(u => u.FinishReason).Should().Equal(ChatFinishReason.ToolCalls, ChatFinishReason.Stop);
    }

    [Fact]
    public async Task The_next_turn_of_a_conversation_reuses_the_cached_prompt()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        string system = string.Join(' ', Enumerable.Range(0, 300).Select(i => $"law{i}"));
        List<ChatMessage> history = [new(ChatRole.System, system), new(ChatRole.User, "Hello!")];
        var first = await client.GetResponseAsync(history, Options());
        first.Text.Should().Be(Script.ChatAnswer);
        first.Usage!.InputTokenCount.Should().BeGreaterThan(512);

        history.AddMessages(first);
        history.Add(new ChatMessage(ChatRole.User, "Again!"));
        var second = await client.GetResponseAsync(history, Options());

        second.Text.Should().Be(Script.ChatAnswer);
        second.Usage!.CachedInputTokenCount.Should().Be(first.Usage.InputTokenCount / 256 * 256);
    }
}
