using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation.Constraints;
using Qwen3.Net.Tests.Chat;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>
/// Constrained generation on the tiny random-weight model: its unconstrained output is random text, so an output that
/// parses and validates shows the grammar alone kept it valid.
/// </summary>
public sealed class ConstrainedGenerationTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private const int RandomSchemas = 273;
    private const int Seeds = 2;
    private const int MaxTokens = 32;

    /// <summary>Generations run at once, so the model's scheduler batches their forward passes.</summary>
    private const int Concurrent = 8;

    private static readonly EvaluationOptions Validation = new() { RequireFormatValidation = true, OutputFormat = OutputFormat.List };

    private Qwen3Model Model => fixture.Model;

    public static IEnumerable<string> AllSchemas()
    {
        var generator = new SchemaGenerator(seed: 15);
        return SchemaGenerator.HandWritten.Concat(Enumerable.Range(0, RandomSchemas).Select(_ => generator.Next()));
    }

    [Fact]
    public async Task Outputs_for_hundreds_of_schemas_and_several_seeds_parse_and_validate()
    {
        var schemas = AllSchemas().ToArray();
        schemas.Length.Should().BeGreaterThanOrEqualTo(300);
        var prompt = Model.Tokenizer.Encode("Write JSON:").ToArray();
        var runs = schemas.SelectMany(schema => Enumerable.Range(0, Seeds).Select(seed => (Schema: schema, Seed: (ulong)seed))).ToArray();
        var outcomes = new (bool Finished, string? Failure)[runs.Length];
        await Parallel.ForEachAsync(Enumerable.Range(0, runs.Length), new ParallelOptions { MaxDegreeOfParallelism = Concurrent }, async (i, _) =>
        {
            var (schemaText, seed) = runs[i];
            var sampling = new SamplingOptions { Temperature = 1f, Seed = seed, MaxNewTokens = MaxTokens };
            var options = new GenerationOptions { Sampling = sampling, ResponseFormat = ResponseFormat.ForJsonSchema(schemaText) };
            var (text, reason, usage) = await Generate(prompt, options);
            if (usage.ConstrainedSteps != usage.GeneratedTokens)
            {
                outcomes[i] = (false, $"{schemaText} seed {seed}: {usage.ConstrainedSteps} of {usage.GeneratedTokens} steps constrained");
            }
            else if (reason == FinishReason.Stop)
            {
                outcomes[i] = (true, Validate(JsonSchema.FromText(schemaText), text) is { } error ? $"{schemaText} seed {seed}: {text} -> {error}" : null);
            }
            else
            {
                outcomes[i] = (false, reason == FinishReason.Length ? null : $"{schemaText} seed {seed}: finished with {reason}");
            }
        });

        var failures = outcomes.Where(o => o.Failure is not null).Select(o => o.Failure).ToList();
        int finished = outcomes.Count(o => o.Finished);
        int total = runs.Length;
        failures.Should().BeEmpty();

        // Most schemas are small enough to finish in the budget; a grammar that never let the model stop would fail this.
        finished.Should().BeGreaterThan(total * 3 / 4);
    }

    [Fact]
    public async Task Without_the_constraint_the_same_model_writes_text_that_does_not_parse()
    {
        // The control for the property test: its outputs are valid because of the mask, not because of the model.
        var prompt = Model.Tokenizer.Encode("Write JSON:").ToArray();
        int parsed = 0;
        for (ulong seed = 0; seed < 5; seed++)
        {
            var (text, _, usage) = await Generate(prompt, new GenerationOptions { Sampling = new SamplingOptions { Temperature = 1f, Seed = seed, MaxNewTokens = 20 } });
            usage.ConstrainedSteps.Should().Be(0);
            parsed += Validate(JsonSchema.FromText("{}"), text) is null ? 1 : 0;
        }

        parsed.Should().Be(0);
    }

    [Fact]
    public async Task Json_object_output_is_an_object()
    {
        var prompt = Model.Tokenizer.Encode("Write JSON:").ToArray();
        for (ulong seed = 0; seed < 4; seed++)
        {
            var (text, reason, _) = await Generate(prompt, new GenerationOptions
            {
                Sampling = new SamplingOptions { Temperature = 1f, Seed = seed, MaxNewTokens = 60 },
                ResponseFormat = ResponseFormat.JsonObject,
            });
            if (reason == FinishReason.Stop)
            {
                JsonNode.Parse(text).Should().BeOfType<JsonObject>();
            }
            else
            {
                text.TrimStart('\n').Should().StartWith("{");
            }
        }
    }

    [Fact]
    public async Task With_thinking_the_reasoning_comes_first_and_is_free_then_the_answer_validates()
    {
        const string schema = """{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer","minimum":0,"maximum":9}},"required":["ok","n"],"additionalProperties":false}""";
        var generator = new ChatGenerator(Model);
        var options = new ChatGenerationOptions
        {
            ThinkingMode = ThinkingMode.Enabled,
            Sampling = new SamplingOptions { Temperature = 1f, Seed = 3, MaxNewTokens = 60 },
            ResponseFormat = ResponseFormat.ForJsonSchema(schema),
            MaxThinkingTokens = 6,
        };
        var updates = await Collect(generator.GenerateAsync([Message.User("Answer in JSON.")], options));
        var ids = updates.SelectMany(u => u.TokenIds).ToArray();
        ids[0].Should().Be(Model.Tokenizer.ThinkStartId, "the think block is opened first");
        ids[7].Should().Be(Model.Tokenizer.ThinkEndId, "six reasoning tokens, then </think> is forced");
        updates.Where(u => u.Kind == ChatUpdateKind.Reasoning).Should().NotBeEmpty();
        var finished = updates[^1];
        finished.FinishReason.Should().Be(FinishReason.Stop);
        finished.Usage!.ConstrainedSteps.Should().Be(finished.Usage.GeneratedTokens - 8);
        Validate(JsonSchema.FromText(schema), finished.Message!.Content).Should().BeNull();
        finished.Message.ReasoningContent.Should().NotBeNull();
    }

    [Fact]
    public async Task Forced_tool_calls_parse_into_tool_calls_whose_arguments_validate()
    {
        var tools = new[]
        {
            ToolDefinition.Function("get_weather", "Weather for a city", Parse("""{"type":"object","properties":{"city":{"type":"string","maxLength":8},"unit":{"enum":["c","f"]}},"required":["city","unit"]}""")),
            ToolDefinition.Function("add", "Adds", Parse("""{"type":"object","properties":{"a":{"type":"integer","minimum":0,"maximum":99},"b":{"type":"integer","minimum":0,"maximum":99}},"required":["a","b"]}""")),
        };
        var generator = new ChatGenerator(Model);
        int calls = 0;
        var names = new HashSet<string>();
        for (ulong seed = 0; seed < 6; seed++)
        {
            var options = new ChatGenerationOptions
            {
                ThinkingMode = ThinkingMode.Disabled,
                Sampling = new SamplingOptions { Temperature = 1f, Seed = seed, MaxNewTokens = 80 },
                Tools = tools,
                ToolChoice = ToolChoice.Required,
                ParallelToolCalls = false,
            };
            var updates = await Collect(generator.GenerateAsync([Message.User("Call a tool.")], options));
            updates.Should().NotContain(u => u.Kind == ChatUpdateKind.MalformedToolCall);
            updates.Should().NotContain(u => u.Kind == ChatUpdateKind.Answer && u.Text.Trim().Length > 0, "a forced tool-call turn has no answer text");
            var finished = updates[^1];
            if (finished.FinishReason != FinishReason.Stop)
            {
                continue;
            }

            finished.Message!.ToolCalls.Should().ContainSingle("parallel calls are off");
            foreach (var call in finished.Message.ToolCalls!)
            {
                calls++;
                names.Add(call.Name);
                var tool = tools.Single(t => t.Name == call.Name);
                var parameters = JsonSchema.FromText(tool.Json.GetProperty("function").GetProperty("parameters").GetRawText());
                Validate(parameters, call.Arguments.GetRawText()).Should().BeNull();
            }
        }

        calls.Should().BeGreaterThan(2);
        names.Should().HaveCount(2, "either tool may be chosen");
    }

    [Fact]
    public async Task A_named_tool_choice_calls_that_tool_and_with_thinking_the_reasoning_comes_first()
    {
        var tools = new[]
        {
            ToolDefinition.Function("a", "A", Parse("""{"type":"object","properties":{"x":{"type":"boolean"}},"required":["x"]}""")),
            ToolDefinition.Function("b", "B", Parse("""{"type":"object","properties":{"y":{"type":"null"}},"required":["y"]}""")),
        };
        var generator = new ChatGenerator(Model);
        var options = new ChatGenerationOptions
        {
            ThinkingMode = ThinkingMode.Enabled,
            Sampling = new SamplingOptions { Temperature = 1f, Seed = 5, MaxNewTokens = 120 },
            Tools = tools,
            ToolChoice = ToolChoice.Function("b"),
            MaxThinkingTokens = 3,
        };
        var updates = await Collect(generator.GenerateAsync([Message.User("Call b.")], options));
        var kinds = updates.Select(u => u.Kind).Where(k => k != ChatUpdateKind.Finished).ToArray();
        kinds[0].Should().Be(ChatUpdateKind.Reasoning);
        var finished = updates[^1];
        finished.FinishReason.Should().Be(FinishReason.Stop);
        finished.Message!.ToolCalls.Should().NotBeEmpty().And.OnlyContain(c => c.Name == "b" && c.Arguments.GetRawText().Replace(" ", "") == """{"y":null}""");
    }

    [Fact]
    public async Task A_constrained_and_an_unconstrained_generation_in_the_same_batch_do_not_affect_each_other()
    {
        var prompt = Model.Tokenizer.Encode("Hello there").ToArray();
        var free = new GenerationOptions { Sampling = SamplingOptions.Greedy with { MaxNewTokens = 20 } };
        var constrained = new GenerationOptions
        {
            Sampling = SamplingOptions.Greedy with { MaxNewTokens = 20 },
            ResponseFormat = ResponseFormat.ForJsonSchema("""{"type":"array","items":{"type":"integer"},"maxItems":4}"""),
        };
        var aloneFree = await Generate(prompt, free);
        var aloneConstrained = await Generate(prompt, constrained);

        var together = await Task.WhenAll(Generate(prompt, free), Generate(prompt, constrained), Generate(prompt, free), Generate(prompt, constrained));
        together[0].Text.Should().Be(aloneFree.Text);
        together[2].Text.Should().Be(aloneFree.Text);
        together[1].Text.Should().Be(aloneConstrained.Text);
        together[3].Text.Should().Be(aloneConstrained.Text);
        aloneConstrained.Text.Should().NotBe(aloneFree.Text);
    }

    [Fact]
    public void A_warm_constrained_step_allocates_nothing()
    {
        var tokenizer = Model.Tokenizer;
        var options = new GenerationOptions
        {
            Sampling = new SamplingOptions { Temperature = 1f, TopK = 40, TopP = 0.9f, RepetitionPenalty = 1.1f, Seed = 1 },
            ResponseFormat = ResponseFormat.ForJsonSchema("""{"type":"object","properties":{"a":{"type":"array","items":{"type":"integer","minimum":0,"maximum":999},"maxItems":50},"b":{"type":"string","maxLength":20}},"required":["a","b"]}"""),
        };
        var rng = new Random(4);
        var logits = Enumerable.Range(0, Model.Config.VocabSize).Select(_ => (float)rng.NextDouble() * 8).ToArray();

        // The same walk twice: the first fills the grammar's DFA states and masks, the second must only read them.
        Walk();
        var (steps, allocated) = Walk();
        steps.Should().BeGreaterThan(20);
        allocated.Should().Be(0);

        (int Steps, long Allocated) Walk()
        {
            var sampler = new Sampler(logits.Length, options.Sampling, [1, 2], seed: 0);
            var constraint = new OutputConstraint(tokenizer, options, [tokenizer.ImEndId]);
            long before = GC.GetAllocatedBytesForCurrentThread();
            int count = 0;
            for (; count < 60 && !constraint.IsFinished; count++)
            {
                sampler.Accept(constraint.Next(sampler, logits));
            }

            return (count, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public async Task A_bad_schema_fails_before_any_generation()
    {
        FluentActions.Invoking(() => ResponseFormat.ForJsonSchema("""{"type":"object","properties":{"a":{"type":"string","uniqueItems":true}}}"""))
            .Should().Throw<SchemaException>().Which.Pointer.Should().Be("/properties/a/uniqueItems");
        FluentActions.Invoking(() => ResponseFormat.ForJsonSchema("{not json")).Should().Throw<SchemaException>();

        var tools = new[] { ToolDefinition.Function("f", "F", Parse("""{"type":"string","minLength":3,"maxLength":2}""")) };
        var generator = new ChatGenerator(Model);
        var options = new ChatGenerationOptions { Tools = tools, ToolChoice = ToolChoice.Required };
        (await FluentActions.Awaiting(() => Collect(generator.GenerateAsync([Message.User("x")], options)))
            .Should().ThrowAsync<SchemaException>()).Which.Message.Should().Contain("tool 'f'");
        await FluentActions.Awaiting(() => Collect(generator.GenerateAsync([Message.User("x")], options with { ToolChoice = ToolChoice.Function("missing") })))
            .Should().ThrowAsync<ArgumentException>();
    }

    [Fact]
    public async Task A_session_turn_takes_a_response_format()
    {
        using var session = new ChatSession(Model, new ChatSessionOptions { ThinkingMode = ThinkingMode.Disabled });
        const string schema = """{"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":3}""";
        var turn = await session.GetResponseAsync("List booleans.", new ChatTurnOptions
        {
            Sampling = new SamplingOptions { Temperature = 1f, Seed = 2, MaxNewTokens = 40 },
            ResponseFormat = ResponseFormat.ForJsonSchema(schema),
        });
        turn.FinishReason.Should().Be(FinishReason.Stop);
        Validate(JsonSchema.FromText(schema), turn.Answer).Should().BeNull();
    }

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>Null when <paramref name="text"/> parses and validates, otherwise what is wrong.</summary>
    private static string? Validate(JsonSchema schema, string text)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            return "does not parse: " + e.Message;
        }

        var result = schema.Evaluate(node, Validation);
        return result.IsValid ? null : string.Join("; ", result.Details.Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));
    }

    private async Task<(string Text, FinishReason Reason, GenerationUsage Usage)> Generate(int[] prompt, GenerationOptions options)
    {
        using var context = Model.CreateContext();
        var generator = new Generator(context);
        var text = new StringBuilder();
        await foreach (var update in generator.GenerateAsync(prompt, options))
        {
            text.Append(update.Text);
            if (update.FinishReason is { } reason)
            {
                return (text.ToString(), reason, update.Usage!);
            }
        }

        throw new InvalidOperationException("The generation ended without a finish reason.");
    }

    private static async Task<List<ChatUpdate>> Collect(IAsyncEnumerable<ChatUpdate> updates)
    {
        var list = new List<ChatUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }
}
