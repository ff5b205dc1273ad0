using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Engine;

public sealed class GeneratorTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    [Fact]
    public async Task Greedy_generation_follows_the_reference_and_stops_at_the_token_limit()
    {
        var golden = tiny.Cases["prompt_300"];
        using var ctx = tiny.Model.CreateContext();
        var options = new GenerationOptions { Sampling = SamplingOptions.Greedy with { MaxNewTokens = golden.GreedyNewIds.Length }, StopTokenIds = [] };
        var updates = await Collect(new Generator(ctx).GenerateAsync(golden.PromptIds, options));

        updates.Select(u => u.TokenId).Should().Equal(golden.GreedyNewIds);
        updates[^1].FinishReason.Should().Be(FinishReason.Length);
        updates.Take(updates.Count - 1).Should().OnlyContain(u => u.FinishReason == null && u.Usage == null);
        var usage = updates[^1].Usage!;
        usage.PromptTokens.Should().Be(300);
        usage.GeneratedTokens.Should().Be(golden.GreedyNewIds.Length);
        string.Concat(updates.Select(u => u.Text)).Should().Be(tiny.Model.Tokenizer.Decode(golden.GreedyNewIds.Where(id => id < tiny.Model.Tokenizer.VocabularySize), skipSpecialTokens: true));
    }

    [Fact]
    public async Task A_follow_up_reuses_what_the_context_holds()
    {
        var golden = tiny.Cases["prompt_300"];
        using var ctx = tiny.Model.CreateContext();
        var generator = new Generator(ctx);
        var options = new GenerationOptions { Sampling = SamplingOptions.Greedy with { MaxNewTokens = 4 }, StopTokenIds = [] };
        var first = await Collect(generator.GenerateAsync(golden.PromptIds, options));

        // The next prompt is the first one, what was generated, and more.
        int[] next = [.. golden.PromptIds, .. first.Select(u => u.TokenId), 11, 12, 13];
        var second = await Collect(generator.GenerateAsync(next, options));
        second[^1].Usage!.ReusedPromptTokens.Should().Be(300 + 3, "all but the last generated token (never evaluated) were in the cache");
    }

    [Fact]
    public async Task A_stop_token_ends_generation_and_is_not_shown()
    {
        var golden = tiny.Cases["prompt_7"];
        int stop = golden.GreedyNewIds[5];
        using var ctx = tiny.Model.CreateContext();
        var updates = await Collect(new Generator(ctx).GenerateAsync(golden.PromptIds, new GenerationOptions { StopTokenIds = [stop] }));

        int first = Array.IndexOf(golden.GreedyNewIds, stop);
        updates.Select(u => u.TokenId).Should().Equal(golden.GreedyNewIds.Take(first + 1));
        updates[^1].FinishReason.Should().Be(FinishReason.Stop);
    }

    [Fact]
    public async Task A_stop_string_ends_generation_and_no_part_of_it_is_released()
    {
        var golden = tiny.Cases["prompt_7"];
        var tokenizer = tiny.Model.Tokenizer;
        string full = tokenizer.Decode(golden.GreedyNewIds, skipSpecialTokens: true);
        string stopString = full.Substring(full.Length / 2, 3);
        using var ctx = tiny.Model.CreateContext();
        var options = new GenerationOptions { Sampling = SamplingOptions.Greedy with { StopStrings = [stopString] }, StopTokenIds = [] };
        var updates = await Collect(new Generator(ctx).GenerateAsync(golden.PromptIds, options));

        updates[^1].FinishReason.Should().Be(FinishReason.StopString);
        string.Concat(updates.Select(u => u.Text)).Should().Be(full[..full.IndexOf(stopString, StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task A_full_context_ends_generation()
    {
        var golden = tiny.Cases["prompt_7"];
        using var ctx = tiny.Model.CreateContext(10);
        var updates = await Collect(new Generator(ctx).GenerateAsync(golden.PromptIds, new GenerationOptions { StopTokenIds = [] }));
        updates.Should().HaveCount(4, "positions 7, 8 and 9 take three generated tokens, and the fourth has no room");
        updates[^1].FinishReason.Should().Be(FinishReason.ContextFull);
        updates.Select(u => u.TokenId).Should().Equal(golden.GreedyNewIds.Take(4));
    }

    [Fact]
    public async Task A_prompt_that_leaves_no_room_is_refused_before_evaluating()
    {
        using var ctx = tiny.Model.CreateContext(7);
        var act = async () => await Collect(new Generator(ctx).GenerateAsync(tiny.Cases["prompt_7"].PromptIds));
        await act.Should().ThrowAsync<ContextOverflowException>();
        ctx.Position.Should().Be(0);
    }

    [Fact]
    public async Task Cancellation_ends_the_stream_with_a_cancelled_update()
    {
        using var ctx = tiny.Model.CreateContext();
        using var cts = new CancellationTokenSource();
        var updates = new List<GenerationUpdate>();
        var options = new GenerationOptions { StopTokenIds = [] };
        await foreach (var update in new Generator(ctx).GenerateAsync(tiny.Cases["prompt_7"].PromptIds, options, cts.Token))
        {
            updates.Add(update);
            if (updates.Count == 3)
            {
                cts.Cancel();
            }
        }

        updates.Should().HaveCount(4);
        updates[^1].TokenId.Should().Be(-1);
        updates[^1].FinishReason.Should().Be(FinishReason.Cancelled);
        updates[^1].Usage!.GeneratedTokens.Should().Be(3);
    }

    [Fact]
    public async Task Sampling_with_a_seed_is_reproducible_alone_and_beside_other_sequences()
    {
        var prompt = tiny.Cases["prompt_300"].PromptIds;
        var options = new GenerationOptions { Sampling = SamplingOptions.ForThinking with { Seed = 42, MaxNewTokens = 24 }, StopTokenIds = [] };
        using var alone = tiny.Model.CreateContext();
        var expected = (await Collect(new Generator(alone).GenerateAsync(prompt, options))).Select(u => u.TokenId).ToArray();

        // Four generators at once share the scheduler's steps; each must draw the same tokens as alone.
        var contexts = Enumerable.Range(0, 4).Select(_ => tiny.Model.CreateContext()).ToArray();
        try
        {
            var runs = await Task.WhenAll(contexts.Select(c => Collect(new Generator(c).GenerateAsync(prompt, options))));
            foreach (var run in runs)
            {
                run.Select(u => u.TokenId).Should().Equal(expected);
            }
        }
        finally
        {
            foreach (var c in contexts)
            {
                c.Dispose();
            }
        }
    }

    private static async Task<List<GenerationUpdate>> Collect(IAsyncEnumerable<GenerationUpdate> updates)
    {
        var list = new List<GenerationUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }
}
