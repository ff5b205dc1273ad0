using Microsoft.Extensions.AI;
using Qwen3.Net.Chat;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.ExtensionsAI;

public sealed class Qwen3ChatClientTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.User, "Hello!")];

    /// <summary>
    /// The fixture's template with a generation prompt that opens a think block (as the templates of Qwen3's
    /// thinking-only models do), so that the random model's output starts as reasoning.
    /// </summary>
    private static readonly ChatTemplate ThinkingTemplate = ChatTemplate.Parse(
        ChatTemplate.FromTokenizerConfig(Path.Combine(Fixtures.TinyModelFolder, "tokenizer_config.json")).Source
            .Replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}", StringComparison.Ordinal));

    /// <summary>Greedy (temperature 0) with thinking on: the random model's tokens are fixed, reasoning and answer both possible.</summary>
    private static ChatOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokens = maxTokens };

    private static ChatGenerationOptions GreedyGeneration(int maxTokens, ThinkingMode mode = ThinkingMode.Enabled) => new()
    {
        ThinkingMode = mode,
        Sampling = SamplingOptions.For(mode == ThinkingMode.Enabled) with { Temperature = 0, MaxNewTokens = maxTokens },
    };

    [Fact]
    public async Task Streaming_gives_the_tokens_and_text_of_ChatGenerator_with_ids_and_a_final_usage()
    {
        using var client = new Qwen3ChatClient(fixture.Model, ThinkingTemplate);
        var updates = await client.GetStreamingResponseAsync(Hello, Greedy(24)).ToListAsync();
        var expected = await new ChatGenerator(fixture.Model, ThinkingTemplate).GenerateAsync([Message.User("Hello!")], GreedyGeneration(24)).ToListAsync();
        expected.Should().Contain(u => u.Kind == ChatUpdateKind.Reasoning, "the prompt opens a think block");

        updates.Select(u => (ChatUpdate)u.RawRepresentation!).SelectMany(u => u.TokenIds).Should().Equal(expected.SelectMany(u => u.TokenIds));
        string.Concat(updates.SelectMany(u => u.Contents.OfType<TextReasoningContent>()).Select(c => c.Text))
            .Should().Be(string.Concat(expected.Where(u => u.Kind == ChatUpdateKind.Reasoning).Select(u => u.Text)));
        string.Concat(updates.Select(u => u.Text)).Should().Be(string.Concat(expected.Where(u => u.Kind == ChatUpdateKind.Answer).Select(u => u.Text)));

        updates.Should().AllSatisfy(u =>
        {
            u.Role.Should().Be(ChatRole.Assistant);
            u.ResponseId.Should().Be(updates[0].ResponseId).And.NotBeNullOrEmpty();
            u.MessageId.Should().Be(updates[0].MessageId).And.NotBeNullOrEmpty();
            u.ModelId.Should().Be("tiny-qwen3");
            u.CreatedAt.Should().Be(updates[0].CreatedAt).And.NotBeNull();
        });
        updates[..^1].Should().AllSatisfy(u => u.FinishReason.Should().BeNull());
        updates[^1].FinishReason.Should().Be(ChatFinishReason.Length);
        var usage = updates[^1].Contents.OfType<UsageContent>().Single().Details;
        var expectedUsage = expected[^1].Usage!;
        usage.InputTokenCount.Should().Be(expectedUsage.PromptTokens);
        usage.OutputTokenCount.Should().Be(24);
        usage.TotalTokenCount.Should().Be(expectedUsage.PromptTokens + 24);
        usage.ReasoningTokenCount.Should().Be(expected.Where(u => u.Kind == ChatUpdateKind.Reasoning).Sum(u => u.TokenIds.Count)).And.BeGreaterThan(0);
    }

    [Fact]
    public async Task A_response_is_the_streamed_updates_in_one_assistant_message()
    {
        using var client = new Qwen3ChatClient(fixture.Model, ThinkingTemplate);
        var updates = await client.GetStreamingResponseAsync(Hello, Greedy(24)).ToListAsync();
        var response = await client.GetResponseAsync(Hello, Greedy(24));

        response.Messages.Should().ContainSingle().Which.Role.Should().Be(ChatRole.Assistant);
        string reasoning = string.Concat(updates.SelectMany(u => u.Contents.OfType<TextReasoningContent>()).Select(c => c.Text));
        reasoning.Should().NotBeEmpty();
        string.Concat(response.Messages[0].Contents.OfType<TextReasoningContent>().Select(c => c.Text)).Should().Be(reasoning);
        response.Text.Should().Be(string.Concat(updates.Select(u => u.Text)));
        response.FinishReason.Should().Be(ChatFinishReason.Length);
        response.ModelId.Should().Be("tiny-qwen3");
        response.ResponseId.Should().StartWith("chatcmpl-").And.NotBe(updates[0].ResponseId, "every response has an id of its own");
        response.Usage!.OutputTokenCount.Should().Be(24);
        response.Usage.InputTokenCount.Should().Be(updates[^1].Contents.OfType<UsageContent>().Single().Details.InputTokenCount);
    }

    [Fact]
    public async Task Hiding_the_reasoning_leaves_the_answer_and_the_turn_unchanged()
    {
        using var client = new Qwen3ChatClient(fixture.Model, ThinkingTemplate);
        var shown = await client.GetStreamingResponseAsync(Hello, Greedy(24)).ToListAsync();
        var options = Greedy(24);
        options.Reasoning = new ReasoningOptions { Output = ReasoningOutput.None };
        var hidden = await client.GetStreamingResponseAsync(Hello, options).ToListAsync();

        shown.SelectMany(u => u.Contents).OfType<TextReasoningContent>().Should().NotBeEmpty("the prompt opens a think block");
        hidden.SelectMany(u => u.Contents).OfType<TextReasoningContent>().Should().BeEmpty();
        string.Concat(hidden.Select(u => u.Text)).Should().Be(string.Concat(shown.Select(u => u.Text)));
        ((ChatUpdate)hidden[^1].RawRepresentation!).Message.Should().Be(((ChatUpdate)shown[^1].RawRepresentation!).Message, "the same turn was generated");
        hidden[^1].Contents.OfType<UsageContent>().Single().Details.ReasoningTokenCount.Should()
            .Be(shown[^1].Contents.OfType<UsageContent>().Single().Details.ReasoningTokenCount, "hidden reasoning is still generated and counted");
    }

    [Fact]
    public async Task Options_reach_the_prompt_and_the_sampler()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var generator = new ChatGenerator(fixture.Model);
        var function = AIFunctionFactory.Create((string city) => $"Sunny in {city}", "get_weather", "The current weather of a city.");
        var tool = ToolDefinition.Function("get_weather", "The current weather of a city.", function.JsonSchema);
        List<Message> hello = [Message.User("Hello!")];

        async Task<UsageDetails> Usage(ChatOptions options) => (await client.GetResponseAsync(Hello, options)).Usage!;

        var noThinking = Greedy(2);
        noThinking.AdditionalProperties = new() { ["enable_thinking"] = false };
        (await Usage(noThinking)).InputTokenCount.Should().Be(generator.EncodePrompt(hello, new() { ThinkingMode = ThinkingMode.Disabled }).Length);

        var withTools = Greedy(2);
        withTools.Tools = [function];
        (await Usage(withTools)).InputTokenCount.Should().Be(generator.EncodePrompt(hello, new() { Tools = [tool] }).Length);
        withTools.ToolMode = ChatToolMode.None;
        (await Usage(withTools)).InputTokenCount.Should().Be(generator.EncodePrompt(hello).Length);

        var instructed = Greedy(2);
        instructed.Instructions = "Answer in French.";
        (await Usage(instructed)).InputTokenCount.Should().Be(generator.EncodePrompt([Message.System("Answer in French."), .. hello]).Length);

        (await Usage(Greedy(3))).OutputTokenCount.Should().Be(3);
    }

    [Fact]
    public async Task A_stop_sequence_ends_the_answer_before_it()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var noThinking = new Dictionary<string, object?> { ["enable_thinking"] = false };
        var full = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0, MaxOutputTokens = 24, AdditionalProperties = new(noThinking) });
        full.Text.Length.Should().BeGreaterThan(8, "the greedy random answer is long enough to cut");
        string stop = full.Text.Substring(full.Text.Length / 2, 3);
        int cut = full.Text.IndexOf(stop, StringComparison.Ordinal);

        var stopped = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0, MaxOutputTokens = 24, StopSequences = [stop], AdditionalProperties = new(noThinking) });

        stopped.Text.Should().Be(full.Text[..cut]);
        stopped.FinishReason.Should().Be(ChatFinishReason.Stop);
    }

    [Fact]
    public async Task The_same_seed_samples_the_same_tokens()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var options = new ChatOptions { Temperature = 1.5f, TopK = 0, TopP = 1, Seed = 1234, MaxOutputTokens = 16 };
        var first = await client.GetStreamingResponseAsync(Hello, options).ToListAsync();
        var second = await client.GetStreamingResponseAsync(Hello, options).ToListAsync();
        var expected = await new ChatGenerator(fixture.Model).GenerateAsync([Message.User("Hello!")], new ChatGenerationOptions
        {
            Sampling = SamplingOptions.ForThinking with { Temperature = 1.5f, TopK = 0, TopP = 1, Seed = 1234, MaxNewTokens = 16 },
        }).ToListAsync();

        Tokens(first).Should().Equal(Tokens(second)).And.Equal(expected.SelectMany(u => u.TokenIds));
    }

    [Fact]
    public async Task A_growing_conversation_prefills_only_its_new_turns()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var generator = new ChatGenerator(fixture.Model);
        string system = string.Join(' ', Enumerable.Range(0, 300).Select(i => $"law{i}"));
        var options = Greedy(6);
        options.AdditionalProperties = new() { ["enable_thinking"] = false };
        List<ChatMessage> history = [new(ChatRole.System, system), new(ChatRole.User, "First question?")];

        var first = await client.GetResponseAsync(history, options);
        int firstPrompt = generator.EncodePrompt([Message.System(system), Message.User("First question?")], new() { ThinkingMode = ThinkingMode.Disabled }).Length;
        firstPrompt.Should().BeGreaterThan(512, "the system prompt fills at least two KV pages");
        first.Usage!.InputTokenCount.Should().Be(firstPrompt);

        history.AddMessages(first);
        history.Add(new ChatMessage(ChatRole.User, "Second question?"));
        var second = await client.GetResponseAsync(history, options);

        second.Usage!.CachedInputTokenCount.Should().Be(firstPrompt / 256 * 256, "every full page of the first prompt is taken from the shared pages");
        second.Usage.InputTokenCount.Should().BeGreaterThan(firstPrompt);
    }

    [Fact]
    public async Task The_assistant_message_of_a_response_maps_back_to_the_turn_ChatGenerator_returns()
    {
        using var client = new Qwen3ChatClient(fixture.Model, ThinkingTemplate);
        var response = await client.GetResponseAsync(Hello, Greedy(24));
        var expected = await new ChatGenerator(fixture.Model, ThinkingTemplate).GenerateAsync([Message.User("Hello!")], GreedyGeneration(24)).ToListAsync();

        var mapped = Qwen3ChatMapper.ToRequest(client, response.Messages, null, client.ModelId).Messages;
        mapped.Should().Equal(expected[^1].Message!);
    }

    [Fact]
    public async Task Cancelling_a_stream_throws_OperationCanceledException()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        var act = async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Hello, Greedy(2000), cts.Token))
            {
                seen++;
                cts.Cancel();
            }
        };

        await act.Should().ThrowAsync<OperationCanceledException>();
        seen.Should().BeGreaterThan(0);

        var cancelled = () => client.GetResponseAsync(Hello, Greedy(2000), new CancellationToken(canceled: true));
        await cancelled.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public void GetService_returns_the_metadata_the_client_and_what_it_runs_on()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        IChatClient chatClient = client;

        var metadata = chatClient.GetService<ChatClientMetadata>();
        metadata!.ProviderName.Should().Be("qwen3.net");
        metadata.DefaultModelId.Should().Be("tiny-qwen3");
        chatClient.GetService<IChatClient>().Should().BeSameAs(client);
        chatClient.GetService<Qwen3ChatClient>().Should().BeSameAs(client);
        chatClient.GetService<Qwen3Model>().Should().BeSameAs(fixture.Model);
        chatClient.GetService<ChatGenerator>().Should().NotBeNull();
        chatClient.GetService<ChatClientMetadata>("some key").Should().BeNull();
        chatClient.GetService<string>().Should().BeNull();
    }

    [Fact]
    public async Task Disposing_keeps_the_model_unless_the_client_owns_it()
    {
        var client = new Qwen3ChatClient(fixture.Model);
        client.Dispose();
        var afterDispose = () => client.GetStreamingResponseAsync(Hello, Greedy(1));
        afterDispose.Should().Throw<ObjectDisposedException>();
        using (var other = new Qwen3ChatClient(fixture.Model))
        {
            (await other.GetResponseAsync(Hello, Greedy(1))).Usage!.OutputTokenCount.Should().Be(1, "the shared model is still loaded");
        }

        var owned = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        new Qwen3ChatClient(owned, ownsModel: true).Dispose();
        var useDisposedModel = () => owned.CreateContext();
        useDisposedModel.Should().Throw<ObjectDisposedException>();
    }

    private static IEnumerable<int> Tokens(List<ChatResponseUpdate> updates) => updates.SelectMany(u => ((ChatUpdate)u.RawRepresentation!).TokenIds);

    private sealed record Point(int X, bool Visible);

    [Fact]
    public async Task A_json_schema_response_format_gives_text_that_deserializes_and_a_required_tool_mode_gives_function_calls()
    {
        using var client = new Qwen3ChatClient(fixture.Model);
        var schema = System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{"X":{"type":"integer","minimum":0,"maximum":99},"Visible":{"type":"boolean"}},"required":["X","Visible"],"additionalProperties":false}""").RootElement;
        var options = new ChatOptions
        {
            Temperature = 1,
            Seed = 4,
            MaxOutputTokens = 40,
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.None },
            ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "point"),
        };
        var response = await client.GetResponseAsync(Hello, options);
        response.FinishReason.Should().Be(ChatFinishReason.Stop);
        var point = System.Text.Json.JsonSerializer.Deserialize<Point>(response.Text);
        point!.X.Should().BeInRange(0, 99);

        var function = AIFunctionFactory.Create((int a, int b) => a + b, "add", "Adds two numbers.");
        var forced = await client.GetResponseAsync(Hello, new ChatOptions
        {
            Temperature = 1,
            Seed = 4,
            MaxOutputTokens = 80,
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.None },
            Tools = [function],
            ToolMode = ChatToolMode.RequireSpecific("add"),
        });
        forced.FinishReason.Should().Be(ChatFinishReason.ToolCalls);
        var calls = forced.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
        calls.Should().NotBeEmpty().And.OnlyContain(c => c.Name == "add" && c.Exception == null && c.Arguments!.ContainsKey("a") && c.Arguments.ContainsKey("b"));
    }
}
