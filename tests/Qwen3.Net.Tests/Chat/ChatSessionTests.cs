using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen3.Net.Chat;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Chat;

/// <summary>Loads the tiny random model once for all session tests.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture() => Model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });

    public Qwen3Model Model { get; }

    public void Dispose() => Model.Dispose();
}

public class ChatSessionTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static readonly SamplingOptions Greedy = SamplingOptions.Greedy with { MaxNewTokens = 10 };

    private Qwen3Model Model => fixture.Model;

    private ChatSession NewSession(SamplingOptions? sampling = null, ThinkingMode mode = ThinkingMode.Disabled, IReadOnlyList<Message>? messages = null, int? contextSize = null) =>
        new(Model, new ChatSessionOptions { ThinkingMode = mode, Sampling = sampling ?? Greedy, Messages = messages ?? [], ContextSize = contextSize });

    private static async Task<List<ChatUpdate>> ReadAll(IAsyncEnumerable<ChatUpdate> updates)
    {
        var list = new List<ChatUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }

    private static int[] Ids(IEnumerable<ChatUpdate> updates) => updates.SelectMany(u => u.TokenIds).ToArray();

    /// <summary>Greedy decoding straight on an <see cref="InferenceContext"/>, the reference the session must match.</summary>
    private int[] GreedyReference(IReadOnlyList<Message> conversation, bool enableThinking, int maxNewTokens)
    {
        var template = ChatTemplate.FromTokenizerConfig(Path.Combine(Model.Folder, "tokenizer_config.json"));
        var prompt = Model.Tokenizer.Encode(template.Render(conversation, null, true, enableThinking)).ToArray();
        using var context = Model.CreateContext();
        var logits = context.Evaluate(prompt);
        var ids = new List<int>();
        while (true)
        {
            int best = 0;
            for (int i = 1; i < logits.Length; i++)
            {
                if (logits[i] > logits[best])
                {
                    best = i;
                }
            }

            ids.Add(best);
            if (ids.Count == maxNewTokens || Model.Config.EosTokenIds.Contains(best) || best == Model.Tokenizer.ImEndId)
            {
                return [.. ids];
            }

            logits = context.Evaluate(new[] { best });
        }
    }

    [Theory]
    [InlineData(ThinkingMode.Disabled)]
    [InlineData(ThinkingMode.Enabled)]
    public async Task Streamed_ids_equal_greedy_decoding_of_the_rendered_prompt(ThinkingMode mode)
    {
        using var session = NewSession(mode: mode);
        var updates = await ReadAll(session.SendAsync("Hello! What is 2 + 2?"));

        var expected = GreedyReference([Message.User("Hello! What is 2 + 2?")], mode == ThinkingMode.Enabled, Greedy.MaxNewTokens);
        Ids(updates).Should().Equal(expected);
        var last = updates[^1];
        last.Kind.Should().Be(ChatUpdateKind.Finished);
        updates.Take(updates.Count - 1).Should().OnlyContain(u => u.Kind != ChatUpdateKind.Finished);
        last.Usage!.GeneratedTokens.Should().Be(expected.Length);
        last.FinishReason.Should().Be(FinishReason.Length, "the tiny random model does not end a turn within 10 greedy tokens");
        last.Usage.ReusedPromptTokens.Should().Be(0);
        last.Usage.DecodeTokensPerSecond.Should().BePositive();
    }

    [Fact]
    public async Task The_finished_turn_is_kept_in_history_with_the_answer_as_content()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { SystemPrompt = "Be brief.", ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy });
        var response = await session.GetResponseAsync("Hi");

        var history = session.History;
        history.Should().HaveCount(3);
        history[0].Should().Be(Message.System("Be brief."));
        history[1].Should().Be(Message.User("Hi"));
        history[2].Role.Should().Be(MessageRole.Assistant);
        history[2].Content.Should().Be(response.Answer);
        response.TokenIds.Should().HaveCount(response.Usage.GeneratedTokens);
    }

    [Fact]
    public async Task The_non_streaming_call_returns_what_the_stream_yields()
    {
        using var streaming = NewSession();
        var updates = await ReadAll(streaming.SendAsync("Tell me a story"));
        using var whole = NewSession();
        var response = await whole.GetResponseAsync("Tell me a story");

        response.TokenIds.Should().Equal(Ids(updates));
        response.Answer.Should().Be(string.Concat(updates.Where(u => u.Kind == ChatUpdateKind.Answer).Select(u => u.Text)));
        response.Reasoning.Should().Be(string.Concat(updates.Where(u => u.Kind == ChatUpdateKind.Reasoning).Select(u => u.Text)));
        response.FinishReason.Should().Be(updates[^1].FinishReason);
    }

    [Fact]
    public async Task Seeded_sampling_is_reproducible()
    {
        async Task<int[]> Run(ulong seed)
        {
            using var session = NewSession(new SamplingOptions { Temperature = 1f, TopK = 50, TopP = 0.95f, Seed = seed, MaxNewTokens = 12 });
            return Ids(await ReadAll(session.SendAsync("Pick random words")));
        }

        var first = await Run(1234);
        (await Run(1234)).Should().Equal(first);
        (await Run(98765)).Should().NotEqual(first);
    }

    [Theory]
    [InlineData(ThinkingMode.Disabled)]
    [InlineData(ThinkingMode.Enabled)]
    public async Task A_second_turn_reuses_the_cache_and_matches_a_fresh_session_with_the_same_history(ThinkingMode mode)
    {
        var opening = "Hello there, please introduce yourself in detail. " + string.Join(" ", Enumerable.Range(1, 40).Select(i => $"item{i}"));
        using var session = NewSession(mode: mode);
        var first = await ReadAll(session.SendAsync(opening));
        var historyAfterFirst = session.History;
        var second = await ReadAll(session.SendAsync("Now say it again."));

        var firstPrompt = first[^1].Usage!.PromptTokens;
        var usage = second[^1].Usage!;
        if (mode == ThinkingMode.Disabled)
        {
            // History drops the empty think block the generation prompt ended with (4 tokens), so reuse stops there.
            usage.ReusedPromptTokens.Should().Be(firstPrompt - 4);
        }
        else
        {
            usage.ReusedPromptTokens.Should().BeGreaterThanOrEqualTo(firstPrompt);
        }

        usage.PrefilledTokens.Should().BeLessThan(usage.PromptTokens / 2);
        usage.PrefilledTokens.Should().Be(usage.PromptTokens - usage.ReusedPromptTokens);

        using var fresh = NewSession(mode: mode, messages: historyAfterFirst);
        var replay = await ReadAll(fresh.SendAsync("Now say it again."));
        replay[^1].Usage!.ReusedPromptTokens.Should().Be(0);
        replay[^1].Usage!.PromptTokens.Should().Be(usage.PromptTokens);
        Ids(second).Should().Equal(Ids(replay));
    }

    [Fact]
    public async Task Cancellation_stops_promptly_keeps_history_and_leaves_the_session_usable()
    {
        var sampling = new SamplingOptions { Temperature = 1f, Seed = 7, MaxNewTokens = 400 };
        using var session = NewSession(sampling, messages: [Message.System("sys")]);
        using var cts = new CancellationTokenSource();
        var updates = new List<ChatUpdate>();
        int seenWhenCancelled = -1;
        await foreach (var update in session.SendAsync("Write a long essay.", cts.Token))
        {
            updates.Add(update);
            if (seenWhenCancelled < 0 && Ids(updates).Length >= 3)
            {
                seenWhenCancelled = Ids(updates).Length;
                cts.Cancel();
            }
        }

        updates[^1].FinishReason.Should().Be(FinishReason.Cancelled);
        var generated = updates[^1].Usage!.GeneratedTokens;
        generated.Should().Be(Ids(updates).Length);
        generated.Should().BeLessThan(400);
        // Updates already queued still arrive; beyond them at most one more token is generated.
        generated.Should().BeLessThanOrEqualTo(seenWhenCancelled + 8);
        session.History.Should().Equal(Message.System("sys"));

        var next = await ReadAll(session.SendAsync("Short one.", new ChatTurnOptions { Sampling = Greedy }));
        using var fresh = NewSession(messages: [Message.System("sys")]);
        Ids(next).Should().Equal(Ids(await ReadAll(fresh.SendAsync("Short one."))));
        session.History.Should().HaveCount(3);
    }

    [Fact]
    public async Task A_cancelled_non_streaming_call_throws_and_keeps_history()
    {
        using var session = NewSession(Greedy with { MaxNewTokens = 200 });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await FluentActions.Awaiting(() => session.GetResponseAsync("hi", cancellationToken: cts.Token)).Should().ThrowAsync<OperationCanceledException>();
        session.History.Should().BeEmpty();
    }

    [Fact]
    public async Task Breaking_out_of_the_stream_frees_the_session_without_recording_the_turn()
    {
        using var session = NewSession(Greedy with { MaxNewTokens = 50 });
        await foreach (var update in session.SendAsync("Go on"))
        {
            break;
        }

        session.History.Should().BeEmpty();
        (await session.GetResponseAsync("Again")).Usage.GeneratedTokens.Should().BePositive();
    }

    [Fact]
    public async Task A_conversation_that_does_not_fit_throws_before_any_work()
    {
        using var session = NewSession(contextSize: 40);
        var longMessage = string.Join(" ", Enumerable.Repeat("word", 60));
        var failure = await FluentActions.Awaiting(() => ReadAll(session.SendAsync(longMessage))).Should().ThrowAsync<ContextOverflowException>();
        failure.Which.Capacity.Should().Be(40);
        failure.Which.Requested.Should().BeGreaterThan(40);
        session.History.Should().BeEmpty();

        var ok = await ReadAll(session.SendAsync("hi"));
        ok[^1].Usage!.ReusedPromptTokens.Should().Be(0, "the failed turn evaluated nothing");
    }

    [Fact]
    public async Task Generation_stops_when_the_context_is_full()
    {
        // The tiny random model does not end a turn within 100 greedy tokens of "hi", so the 24-token context fills first.
        using var session = NewSession(Greedy with { MaxNewTokens = 100 }, contextSize: 24);
        var updates = await ReadAll(session.SendAsync("hi"));
        var usage = updates[^1].Usage!;
        updates[^1].FinishReason.Should().Be(FinishReason.ContextFull);
        (usage.PromptTokens + usage.GeneratedTokens).Should().Be(24 + 1, "the last sampled token is not evaluated");
    }

    [Fact]
    public async Task Generation_stops_at_an_end_of_turn_token_and_keeps_the_turn()
    {
        // The random model never picks <|im_end|>, so the same model is loaded with its third greedy token declared an
        // end-of-turn id in generation_config.json.
        var expected = GreedyReference([Message.User("Hello! What is 2 + 2?")], enableThinking: false, Greedy.MaxNewTokens);
        int stopId = expected[2];
        expected[..2].Should().NotContain(stopId);
        using var folder = new TempFolder();
        foreach (var file in Directory.GetFiles(Model.Folder))
        {
            File.Copy(file, folder.File(Path.GetFileName(file)));
        }

        var generation = JsonNode.Parse(File.ReadAllText(folder.File("generation_config.json")))!;
        generation["eos_token_id"] = new JsonArray(stopId);
        File.WriteAllText(folder.File("generation_config.json"), generation.ToJsonString());
        using var model = Qwen3Model.Load(folder.Path, new Qwen3ModelOptions { ThreadCount = 1 });
        using var session = new ChatSession(model, new ChatSessionOptions { ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy });

        var updates = await ReadAll(session.SendAsync("Hello! What is 2 + 2?"));

        Ids(updates).Should().Equal(expected[..3]);
        updates[^1].FinishReason.Should().Be(FinishReason.Stop);
        updates[^1].Usage!.GeneratedTokens.Should().Be(3);
        session.History.Should().HaveCount(2);
        session.History[1].Role.Should().Be(MessageRole.Assistant);
    }

    [Fact]
    public void Invalid_session_and_turn_options_throw_naming_the_parameter()
    {
        FluentActions.Invoking(() => new ChatSession(Model, new ChatSessionOptions { ContextSize = 0 }))
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("ContextSize");
        FluentActions.Invoking(() => new ChatSession(Model, new ChatSessionOptions { ContextSize = Model.Config.MaxPositionEmbeddings + 1 }))
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("ContextSize");
        FluentActions.Invoking(() => new ChatSession(Model, new ChatSessionOptions { SystemPrompt = "a", Messages = [Message.System("b")] }))
            .Should().Throw<ArgumentException>();

        using var session = NewSession();
        FluentActions.Invoking(() => session.SendAsync("x", new ChatTurnOptions { ThinkingMode = (ThinkingMode)7 }))
            .Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => session.SendAsync(null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new ChatTurnOptions { Sampling = SamplingOptions.ForThinking with { Temperature = -1 } })
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Temperature");
    }

    [Fact]
    public void A_negative_thinking_limit_is_refused_by_every_options_type_and_zero_or_none_kept()
    {
        FluentActions.Invoking(() => new ChatTurnOptions { MaxThinkingTokens = -1 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxThinkingTokens");
        FluentActions.Invoking(() => new ChatGenerationOptions { MaxThinkingTokens = -1 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxThinkingTokens");
        FluentActions.Invoking(() => new GenerationOptions { MaxThinkingTokens = -1 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxThinkingTokens");
        new ChatTurnOptions { MaxThinkingTokens = 0 }.MaxThinkingTokens.Should().Be(0);
        new ChatGenerationOptions { MaxThinkingTokens = 0 }.MaxThinkingTokens.Should().Be(0);
        new GenerationOptions { MaxThinkingTokens = null }.MaxThinkingTokens.Should().BeNull();
    }

    [Fact]
    public async Task A_second_turn_while_one_is_streaming_throws_and_the_first_completes()
    {
        using var session = NewSession(Greedy with { MaxNewTokens = 30 });
        await using var first = session.SendAsync("one").GetAsyncEnumerator();
        (await first.MoveNextAsync()).Should().BeTrue();

        await FluentActions.Awaiting(() => ReadAll(session.SendAsync("two"))).Should().ThrowAsync<InvalidOperationException>();
        FluentActions.Invoking(session.Reset).Should().Throw<InvalidOperationException>();

        var rest = new List<ChatUpdate> { first.Current };
        while (await first.MoveNextAsync())
        {
            rest.Add(first.Current);
        }

        rest[^1].Kind.Should().Be(ChatUpdateKind.Finished);
        session.History.Should().HaveCount(2);
    }

    [Fact]
    public async Task Sessions_on_different_threads_do_not_interfere()
    {
        string[] prompts = ["The first conversation", "Another, different conversation about cats"];
        var alone = new List<int[]>();
        foreach (var prompt in prompts)
        {
            using var session = NewSession(Greedy with { MaxNewTokens = 16 });
            alone.Add(Ids(await ReadAll(session.SendAsync(prompt))));
        }

        using var barrier = new Barrier(prompts.Length);
        var together = await Task.WhenAll(prompts.Select(prompt => Task.Run(async () =>
        {
            using var session = NewSession(Greedy with { MaxNewTokens = 16 });
            barrier.SignalAndWait();
            return Ids(await ReadAll(session.SendAsync(prompt)));
        })));

        together[0].Should().Equal(alone[0]);
        together[1].Should().Equal(alone[1]);
    }

    [Fact]
    public async Task Tool_results_continue_the_conversation()
    {
        var call = ToolCall.FromJson("get_weather", "{\"city\": \"Paris\"}");
        Message[] start = [Message.User("Weather in Paris?"), Message.Assistant("", toolCalls: [call])];
        var tools = new[] { ToolDefinition.Function("get_weather", "Current weather", JsonDocument.Parse("{\"type\": \"object\"}").RootElement) };
        using var session = new ChatSession(Model, new ChatSessionOptions { Messages = start, Tools = tools, ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy });

        await FluentActions.Awaiting(() => ReadAll(session.ContinueAsync())).Should().ThrowAsync<InvalidOperationException>("there are no tool results yet");
        session.AddToolResult("{\"temperature\": 21}");
        var updates = await ReadAll(session.ContinueAsync());

        updates[^1].Kind.Should().Be(ChatUpdateKind.Finished);
        var history = session.History;
        history.Should().HaveCount(4);
        history[2].Should().Be(Message.Tool("{\"temperature\": 21}"));
        history[3].Role.Should().Be(MessageRole.Assistant);
        FluentActions.Invoking(() => session.AddToolResult("late")).Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public async Task Reset_returns_to_the_initial_messages_and_reuses_their_cached_tokens()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { SystemPrompt = "You are terse.", ThinkingMode = ThinkingMode.Disabled, Sampling = Greedy });
        await ReadAll(session.SendAsync("first"));
        session.Reset();
        session.History.Should().Equal(Message.System("You are terse."));

        var after = await ReadAll(session.SendAsync("second"));
        after[^1].Usage!.ReusedPromptTokens.Should().BeGreaterThan(5, "the system prompt is still cached");
    }

    [Fact]
    public async Task Disposing_the_session_makes_it_unusable()
    {
        var session = NewSession();
        session.Dispose();
        FluentActions.Invoking(() => session.SendAsync("x")).Should().Throw<ObjectDisposedException>();
        await Task.CompletedTask;
    }
}
