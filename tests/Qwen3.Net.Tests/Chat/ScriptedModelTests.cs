using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.ScriptedModel;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Chat;

/// <summary>Generates the scripted model once into a temporary folder and loads it.</summary>
public sealed class ScriptedModelFixture : IDisposable
{
    private readonly TempFolder _folder = new();

    public ScriptedModelFixture()
    {
        Plan = ScriptedModelGenerator.Write(_folder.Path, Fixtures.TinyModelFolder);
        Model = Qwen3Model.Load(_folder.Path, new Qwen3ModelOptions { ThreadCount = 1 });
    }

    public ScriptPlan Plan { get; }

    public Qwen3Model Model { get; }

    public void Dispose()
    {
        Model.Dispose();
        _folder.Dispose();
    }
}

public class ScriptedModelTests(ScriptedModelFixture fixture) : IClassFixture<ScriptedModelFixture>
{
    // The lead the scripted token must keep over every other logit (the construction gives 80): at temperature 0.5 any
    // other token is then at least e^-120 times less likely.
    private const float RequiredGap = 60;

    // Longer than every script, so a model that leaves its script fails fast with FinishReason Length.
    private static readonly SamplingOptions Greedy = SamplingOptions.Greedy with { MaxNewTokens = 64 };

    private const string ToolResult = "{\"temperature\": 21, \"condition\": \"sunny\"}";

    private static readonly ToolDefinition WeatherTool = ToolDefinition.Function(
        Script.ToolName,
        "Current weather of a city.",
        JsonDocument.Parse("""{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}""").RootElement);

    private static readonly ToolCall ScriptedCall = ToolCall.FromJson(Script.ToolName, Script.ToolArgumentsJson);

    private Qwen3Model Model => fixture.Model;

    private ScriptPlan Plan => fixture.Plan;

    public static TheoryData<string> Flows => ["chat", "chat-multi-turn", "chat-system-prompt", "tool-call", "after-tool-result", "after-long-tool-result"];

    public static TheoryData<float, ulong> SampledRuns => new()
    {
        { 0.5f, 1 }, { 0.5f, 2 }, { 0.5f, 3 }, { 0.7f, 4 }, { 0.7f, 5 }, { 0.7f, 6 },
    };

    [Theory]
    [MemberData(nameof(Flows))]
    public void Every_scripted_token_leads_all_others_by_the_required_gap(string flow)
    {
        foreach (bool thinking in new[] { true, false })
        {
            var (messages, tools, expected) = Conversation(flow, thinking);
            var template = ChatTemplate.FromTokenizerConfig(Path.Combine(Model.Folder, "tokenizer_config.json"));
            int[] prompt = [.. Model.Tokenizer.Encode(template.Render(messages, tools, true, thinking))];
            using var context = Model.CreateContext(prompt.Length + expected.Count);
            var logits = context.Evaluate(prompt);
            for (int step = 0; step < expected.Count; step++)
            {
                int best = ArgMax(logits);
                float runnerUp = logits.ToArray().Where((_, id) => id != best).Max();
                best.Should().Be(expected[step], $"{flow} (thinking {thinking}) step {step} follows the script");
                (logits[best] - runnerUp).Should().BeGreaterThanOrEqualTo(RequiredGap, $"{flow} (thinking {thinking}) step {step} has a safe lead");
                logits = context.Evaluate([expected[step]]);
            }
        }
    }

    [Fact]
    public async Task Thinking_on_streams_the_scripted_reasoning_then_the_answer()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, ThinkingMode = ThinkingMode.Enabled, Sampling = Greedy });
        var updates = await ReadAll(session.SendAsync("Hi there!"));

        var kinds = updates.Select(u => u.Kind).Distinct().ToArray();
        kinds.Should().Equal(ChatUpdateKind.Reasoning, ChatUpdateKind.Answer, ChatUpdateKind.Finished);
        Text(updates, ChatUpdateKind.Reasoning).Should().Be(Script.ChatReasoning);
        Text(updates, ChatUpdateKind.Answer).Should().Be(Script.ChatAnswer);
        updates[^1].FinishReason.Should().Be(FinishReason.Stop);
        updates.SelectMany(u => u.TokenIds).Should().Equal(Plan.ChatThinking);

        // The answer arrives token by token, and no update carries half a character.
        updates.Count(u => u.Kind == ChatUpdateKind.Answer).Should().BeGreaterThan(10);
        updates.Should().OnlyContain(u => !u.Text.Contains('\uFFFD'));
        session.History[^1].Should().Be(Message.Assistant(Script.ChatAnswer, Script.ChatReasoning));
    }

    [Fact]
    public async Task Thinking_off_gives_the_answer_without_reasoning()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy });
        var updates = await ReadAll(session.SendAsync("Hi there!"));

        updates.Should().NotContain(u => u.Kind == ChatUpdateKind.Reasoning);
        Text(updates, ChatUpdateKind.Answer).Should().Be(Script.ChatAnswer);
        updates[^1].FinishReason.Should().Be(FinishReason.Stop);
        updates.SelectMany(u => u.TokenIds).Should().Equal(Plan.Chat);
    }

    [Fact]
    public async Task A_second_turn_follows_the_chat_script_again()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, ThinkingMode = ThinkingMode.Enabled, Sampling = Greedy });
        await session.GetResponseAsync("Hi there!");
        var second = await session.GetResponseAsync("And again?");

        second.Reasoning.Should().Be(Script.ChatReasoning);
        second.Answer.Should().Be(Script.ChatAnswer);
        second.FinishReason.Should().Be(FinishReason.Stop);
    }

    [Theory]
    [InlineData(ThinkingMode.Enabled)]
    [InlineData(ThinkingMode.Disabled)]
    public async Task With_tools_the_model_calls_get_weather_then_answers_from_the_result(ThinkingMode mode)
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, ThinkingMode = mode, Sampling = Greedy, Tools = [WeatherTool] });
        await ExpectToolFlow(session, mode == ThinkingMode.Enabled);
    }

    [Theory]
    [MemberData(nameof(SampledRuns))]
    public async Task Sampling_follows_every_script(float temperature, ulong seed)
    {
        var sampling = SamplingOptions.ForThinking with { Temperature = temperature, Seed = seed, MaxNewTokens = Greedy.MaxNewTokens };
        using (var chat = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, Sampling = sampling }))
        {
            var response = await chat.GetResponseAsync("Hi there!");
            response.Reasoning.Should().Be(Script.ChatReasoning);
            response.Answer.Should().Be(Script.ChatAnswer);
            response.TokenIds.Should().Equal(Plan.ChatThinking);

            var plain = await chat.GetResponseAsync("Once more, briefly.", new ChatTurnOptions { ThinkingMode = ThinkingMode.Disabled });
            plain.TokenIds.Should().Equal(Plan.Chat);
        }

        using var tools = new ChatSession(Model, new ChatSessionOptions { ContextSize = 2048, Sampling = sampling, Tools = [WeatherTool] });
        await ExpectToolFlow(tools, thinking: true);
    }

    private async Task ExpectToolFlow(ChatSession session, bool thinking)
    {
        var call = await session.GetResponseAsync("What is the weather in Paris?");
        call.ToolCalls.Should().Equal(ScriptedCall);
        call.ToolCalls[0].Arguments.GetProperty("city").GetString().Should().Be("Paris");
        call.MalformedToolCalls.Should().BeEmpty();
        call.Answer.Should().BeEmpty();
        call.Reasoning.Should().Be(thinking ? Script.ToolCallReasoning : string.Empty);
        call.FinishReason.Should().Be(FinishReason.Stop);
        call.TokenIds.Should().Equal(thinking ? Plan.ToolCallThinking : Plan.ToolCall);

        session.AddToolResult(ToolResult);
        var final = await ChatTurn.CollectAsync(session.ContinueAsync());
        final.Reasoning.Should().Be(thinking ? Script.FinalReasoning : string.Empty);
        final.Answer.Should().Be(Script.FinalAnswer);
        final.ToolCalls.Should().BeEmpty();
        final.FinishReason.Should().Be(FinishReason.Stop);
        final.TokenIds.Should().Equal(thinking ? Plan.FinalThinking : Plan.Final);
    }

    /// <summary>The prompt messages and tools of a flow, and the tokens the model must answer with.</summary>
    private (List<Message> Messages, IReadOnlyList<ToolDefinition>? Tools, IReadOnlyList<int> Expected) Conversation(string flow, bool thinking)
    {
        var user = Message.User("What is the weather in Paris?");
        var callTurn = Message.Assistant(string.Empty, thinking ? Script.ToolCallReasoning : null, [ScriptedCall]);
        return flow switch
        {
            "chat" => ([user], null, thinking ? Plan.ChatThinking : Plan.Chat),
            "chat-multi-turn" => ([Message.User("Hi"), Message.Assistant(Script.ChatAnswer), user], null, thinking ? Plan.ChatThinking : Plan.Chat),
            "chat-system-prompt" => ([Message.System("You are terse."), user], null, thinking ? Plan.ChatThinking : Plan.Chat),
            "tool-call" => ([Message.System("You are terse."), user], [WeatherTool], thinking ? Plan.ToolCallThinking : Plan.ToolCall),
            "after-tool-result" => ([user, callTurn, Message.Tool(ToolResult)], [WeatherTool], thinking ? Plan.FinalThinking : Plan.Final),

            // Thousands of tokens between the markers and the end, where attention could dilute them.
            "after-long-tool-result" => ([user, callTurn, Message.Tool(string.Concat(Enumerable.Repeat("sunny, warm, calm; ", 300)))], [WeatherTool], thinking ? Plan.FinalThinking : Plan.Final),
            _ => throw new ArgumentOutOfRangeException(nameof(flow)),
        };
    }

    private static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static string Text(IEnumerable<ChatUpdate> updates, ChatUpdateKind kind) =>
        string.Concat(updates.Where(u => u.Kind == kind).Select(u => u.Text));

    private static async Task<List<ChatUpdate>> ReadAll(IAsyncEnumerable<ChatUpdate> updates)
    {
        var list = new List<ChatUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }
}
