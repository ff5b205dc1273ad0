using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

/// <summary>How a turn's reasoning, answer and tool calls become OpenAI's message and delta fields.</summary>
public sealed class TurnAccumulatorTests
{
    private static readonly GenerationUsage Usage = new(20, 0, 9, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(9));

    private static TurnAccumulator Accumulate()
    {
        var turn = new TurnAccumulator("m");
        turn.Add(new ChatUpdate(ChatUpdateKind.Reasoning, "Let me think.", [1, 2, 3]));
        turn.Add(new ChatUpdate(ChatUpdateKind.Answer, "Checking.", [4]));
        turn.Add(new ChatUpdate(ChatUpdateKind.ToolCall, "", [5, 6], ToolCall.FromJson("get_weather", """{"city": "Paris"}""")));
        return turn;
    }

    [Fact]
    public void CompletionCarriesReasoningAnswerAndToolCallsApart()
    {
        var turn = Accumulate();
        string finish = turn.FinishReasonOf(FinishReason.Stop);
        using var json = JsonDocument.Parse(turn.Completion(finish, Usage, returnReasoning: true));

        var choice = json.RootElement.GetProperty("choices")[0];
        choice.GetProperty("finish_reason").GetString().Should().Be("tool_calls");
        var message = choice.GetProperty("message");
        message.GetProperty("reasoning_content").GetString().Should().Be("Let me think.");
        message.GetProperty("content").GetString().Should().Be("Checking.");
        var call = message.GetProperty("tool_calls")[0];
        call.GetProperty("id").GetString().Should().StartWith("call_");
        call.GetProperty("type").GetString().Should().Be("function");
        call.GetProperty("function").GetProperty("name").GetString().Should().Be("get_weather");
        call.GetProperty("function").GetProperty("arguments").GetString().Should().Be("""{"city": "Paris"}""");
        var usage = json.RootElement.GetProperty("usage");
        usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32().Should().Be(3);
        usage.GetProperty("total_tokens").GetInt32().Should().Be(29);
    }

    [Fact]
    public void ReturnReasoningFalseLeavesTheReasoningOut()
    {
        using var json = JsonDocument.Parse(Accumulate().Completion("stop", Usage, returnReasoning: false));
        json.RootElement.GetProperty("choices")[0].GetProperty("message").TryGetProperty("reasoning_content", out _).Should().BeFalse();
    }

    [Theory]
    [InlineData(FinishReason.Stop, "stop")]
    [InlineData(FinishReason.StopString, "stop")]
    [InlineData(FinishReason.Length, "length")]
    [InlineData(FinishReason.ContextFull, "length")]
    public void FinishReasonsMapToOpenAIs(FinishReason reason, string expected) =>
        new TurnAccumulator("m").FinishReasonOf(reason).Should().Be(expected);

    [Fact]
    public void MalformedToolCallReachesTheClientAsText()
    {
        var turn = new TurnAccumulator("m");
        var (_, answer, call) = turn.Add(new ChatUpdate(ChatUpdateKind.MalformedToolCall, "{oops", [7], malformedToolCall: new MalformedToolCall("{oops", "bad JSON")));
        answer.Should().Be("<tool_call>{oops</tool_call>");
        call.Should().BeNull();
        turn.FinishReasonOf(FinishReason.Stop).Should().Be("stop");
    }

    private static ChatUpdate Text(string text) => new(ChatUpdateKind.ToolCallText, text, [1]);

    private static ChatUpdate Call(string block)
    {
        ChatOutputParser.TryParseToolCall(block, out var call).Should().BeNull();
        return new ChatUpdate(ChatUpdateKind.ToolCall, block, [2], call);
    }

    /// <summary>Feeds a block one character at a time, as a streamed turn would, and returns the deltas sent.</summary>
    private static List<ToolCallDelta> StreamBlock(TurnAccumulator turn, string block, bool valid = true)
    {
        var deltas = new List<ToolCallDelta>();
        foreach (char c in block)
        {
            if (turn.Add(Text(c.ToString())).Call is { } delta)
            {
                deltas.Add(delta);
            }
        }

        var last = valid ? turn.Add(Call(block)) : turn.Add(new ChatUpdate(ChatUpdateKind.MalformedToolCall, block, [3], malformedToolCall: new MalformedToolCall(block, "bad")));
        if (last.Call is { } end)
        {
            deltas.Add(end);
        }

        return deltas;
    }

    [Theory]
    [InlineData("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa\\\"ris}\", \"days\": [1, {\"x\": \"]}\"}]}}\n")]
    [InlineData("{\"name\":\"f\",\"arguments\":{}}")]
    [InlineData("{ \"name\" : \"g\\u00e9t\" , \"arguments\" :\n{ \"a\" : { } } , \"extra\": {\"b\": 2} }")]
    public void StreamedArgumentsStartWithTheNameAndJoinToTheFinalArguments(string block)
    {
        var turn = new TurnAccumulator("m");
        var deltas = StreamBlock(turn, block);

        deltas.Count.Should().BeGreaterThan(1, "the arguments stream as they are written");
        deltas[0].Id.Should().StartWith("call_");
        deltas[0].Name.Should().Be(turn.ToolCalls.Single().Name);
        deltas[0].Arguments.Should().Be("{", "the first delta goes out as soon as the arguments object starts");
        deltas.Skip(1).Should().OnlyContain(d => d.Id == null && d.Name == null && d.Arguments.Length > 0);
        deltas.Should().OnlyContain(d => d.Index == 0);
        string.Concat(deltas.Select(d => d.Arguments)).Should().Be(turn.ToolCalls.Single().Arguments);
        turn.ToolCalls.Single().Id.Should().Be(deltas[0].Id);
    }

    [Fact]
    public void ArgumentsBeforeTheNameGoOutWhenTheNameArrives()
    {
        var turn = new TurnAccumulator("m");
        var deltas = StreamBlock(turn, """{"arguments": {"a": 1}, "name": "f"}""");
        deltas.Should().ContainSingle().Which.Should().Be(new ToolCallDelta(0, turn.ToolCalls.Single().Id, "f", """{"a": 1}"""));
    }

    [Fact]
    public void ArgumentsGivenAsAJsonStringGoOutWholeWithTheCall()
    {
        var turn = new TurnAccumulator("m");
        var deltas = StreamBlock(turn, """{"name": "f", "arguments": "{\"a\": 1}"}""");
        deltas.Should().ContainSingle().Which.Arguments.Should().Be("""{"a": 1}""");
    }

    [Fact]
    public void AStreamedCallThatTurnsOutMalformedStaysAsSentAndTheNextCallTakesANewIndex()
    {
        var turn = new TurnAccumulator("m");
        var broken = StreamBlock(turn, """{"name": "f", "arguments": {"a": oops}}""", valid: false);
        broken.Should().NotBeEmpty();
        broken.Should().OnlyContain(d => d.Index == 0);
        turn.ToolCalls.Should().BeEmpty();

        var next = StreamBlock(turn, """{"name": "g", "arguments": {"b": 2}}""");
        next.Should().OnlyContain(d => d.Index == 1);
        string.Concat(next.Select(d => d.Arguments)).Should().Be("""{"b": 2}""");
        turn.FinishReasonOf(FinishReason.Stop).Should().Be("tool_calls");
    }
}
