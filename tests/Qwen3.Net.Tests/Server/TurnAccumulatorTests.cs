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
}
