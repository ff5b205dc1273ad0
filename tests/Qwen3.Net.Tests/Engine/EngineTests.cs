using System.Diagnostics;
using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Engine;

[CollectionDefinition(nameof(ThreadCountCollection), DisableParallelization = true)]
public sealed class ThreadCountCollection;

/// <summary>The process's thread count is only meaningful while no other test creates models.</summary>
[Collection(nameof(ThreadCountCollection))]
public sealed class EngineThreadTests
{
    [Fact]
    public void Contexts_create_no_threads()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 2 });
        using (var one = model.CreateContext())
        {
            one.Evaluate([1, 2, 3]);
        }

        int withOne = Process.GetCurrentProcess().Threads.Count;
        var contexts = Enumerable.Range(0, 32).Select(_ => model.CreateContext()).ToList();
        foreach (var ctx in contexts)
        {
            ctx.Evaluate([1, 2, 3]);
        }

        int withThirtyTwo = Process.GetCurrentProcess().Threads.Count;
        contexts.ForEach(c => c.Dispose());

        // The runtime may start a thread of its own meanwhile (a timer, the finalizer); a thread per context would be 31 more.
        withThirtyTwo.Should().BeLessThan(withOne + 4, "contexts use the model's scheduler and pool, never threads of their own");
    }

    [Fact]
    public async Task A_sequence_whose_next_page_does_not_fit_in_memory_fails_alone()
    {
        // The 20 new tokens run in one chunk, so the page they need is refused before any of them is kept (with smaller
        // chunks the tokens that fit the current page would be evaluated first, and kept, as documented).
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1, InterleavedPrefillTokens = 32 });
        using var small = model.CreateContext();
        using var large = model.CreateContext();
        small.Evaluate([1, 2, 3]);
        large.Evaluate([.. Enumerable.Range(10, 100)]);
        int pages = model.PagePool.AllocatedPages;
        try
        {
            // No memory left for a fresh page. Past half its page, the large one's second page is not rented ahead, and
            // that costs the evaluation nothing.
            Qwen3.Net.Kernels.AvailableMemory.OverrideForTests = () => 0;
            large.Evaluate([.. Enumerable.Range(110, 150)]);
            model.PagePool.AllocatedPages.Should().Be(pages);

            // The one that needs a page fails, the one that has room goes on, together.
            model.Scheduler.Hold(true);
            var growing = large.EvaluateAsync(Enumerable.Range(300, 20).ToArray());
            var staying = small.EvaluateAsync(new[] { 4, 5 });
            model.Scheduler.Hold(false);

            await FluentActions.Awaiting(async () => await growing).Should().ThrowAsync<InsufficientMemoryException>().WithMessage("*KV cache page*");
            await staying;
        }
        finally
        {
            Qwen3.Net.Kernels.AvailableMemory.OverrideForTests = null;
        }

        small.Position.Should().Be(5);
        large.Position.Should().Be(250, "nothing of the failed evaluation was kept");
        model.PagePool.AllocatedPages.Should().Be(pages);
        large.Evaluate([.. Enumerable.Range(300, 20)]).Length.Should().Be(model.Config.VocabSize, "with memory back, the same evaluation runs");
    }
}

public sealed class EngineTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    [Fact]
    public async Task A_full_queue_refuses_the_next_evaluation_with_a_clear_exception()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1, MaxQueuedRequests = 2 });
        using var a = model.CreateContext();
        using var b = model.CreateContext();
        using var c = model.CreateContext();
        model.Scheduler.Hold(true);
        var first = a.EvaluateAsync(new[] { 1, 2, 3 });
        var second = b.EvaluateAsync(new[] { 4, 5 });

        Action third = () => c.Evaluate([6]);
        third.Should().Throw<QueueFullException>().Which.Limit.Should().Be(2);
        c.Position.Should().Be(0);

        model.Scheduler.Hold(false);
        await first;
        await second;
        a.Position.Should().Be(3);
        b.Position.Should().Be(2);
        c.Evaluate([6]).Length.Should().Be(model.Config.VocabSize, "the queue has room again");
    }

    [Fact]
    public async Task Disposing_the_model_fails_queued_evaluations_and_later_use_throws()
    {
        var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        using var ctx = model.CreateContext();
        using var other = model.CreateContext();
        model.Scheduler.Hold(true);
        var queued = ctx.EvaluateAsync(new[] { 1, 2, 3 });
        model.Dispose();

        await FluentActions.Awaiting(() => queued.AsTask()).Should().ThrowAsync<ObjectDisposedException>();
        other.Invoking(o => o.Evaluate([1])).Should().Throw<ObjectDisposedException>();
        model.Invoking(m => m.CreateContext()).Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void A_cancelled_token_evaluates_nothing()
    {
        using var ctx = tiny.Model.CreateContext();
        ctx.Evaluate([1, 2]);
        Action act = () => ctx.Evaluate([3, 4], new CancellationToken(canceled: true));
        act.Should().Throw<OperationCanceledException>();
        ctx.Position.Should().Be(2);
    }

    [Fact]
    public void A_prefill_alone_in_its_step_stops_between_layers_when_cancelled()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        using var ctx = model.CreateContext();
        using var cts = new CancellationTokenSource();
        int deepest = -1;

        // Cancelled right after the first layer: the second must not run.
        ctx.Observer = (stage, _) =>
        {
            deepest = Math.Max(deepest, stage);
            if (stage == 1)
            {
                cts.Cancel();
            }
        };

        Action act = () => ctx.Evaluate([.. Enumerable.Range(100, 400)], cts.Token);
        act.Should().Throw<OperationCanceledException>();
        deepest.Should().Be(1, "the pass stops before layer 2");
        ctx.Position.Should().Be(0, "the block that was cut short is not kept");

        ctx.Observer = null;
        ctx.Evaluate([.. Enumerable.Range(100, 400)]).Length.Should().Be(model.Config.VocabSize, "the context is usable afterwards");
        ctx.Position.Should().Be(400);
    }

    [Fact]
    public void A_second_context_with_the_same_prompt_reuses_the_full_pages_and_gets_the_same_logits()
    {
        var prompt = Enumerable.Range(2000, 700).ToArray();
        using var first = tiny.Model.CreateContext();
        float[] expected = first.Evaluate(prompt).ToArray();
        first.SharedTokens.Should().Be(0);
        first.Dispose();

        // The first context is gone; its full pages were kept within the retention budget.
        using var second = tiny.Model.CreateContext();
        float[] actual = second.Evaluate(prompt).ToArray();
        second.SharedTokens.Should().Be(512);
        actual.Should().Equal(expected, "the last 188 tokens run as they did, over the same cached keys and values");
    }

    [Fact]
    public void Pages_are_not_retained_beyond_the_budget()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1, RetainedCacheBytes = 0 });
        var prompt = Enumerable.Range(2000, 700).ToArray();
        using (var first = model.CreateContext())
        {
            first.Evaluate(prompt);
            model.PagePool.SharedPrefixPages.Should().Be(2);
        }

        model.PagePool.AllocatedPages.Should().Be(0, "nothing is kept once the last context lets go");
        using var second = model.CreateContext();
        second.Evaluate(prompt);
        second.SharedTokens.Should().Be(0);
    }

    [Fact]
    public void Evaluating_past_the_capacity_is_refused_and_evaluates_nothing()
    {
        using var ctx = tiny.Model.CreateContext(10);
        ctx.Evaluate([1, 2, 3, 4, 5, 6, 7, 8]);
        Action act = () => ctx.Evaluate([9, 10, 11]);
        act.Should().Throw<ContextOverflowException>().Which.Capacity.Should().Be(10);
        ctx.Position.Should().Be(8);
    }

    [Fact]
    public void The_gather_before_a_step_waits_for_the_returning_streams_not_for_any_request()
    {
        using var a = tiny.Model.CreateContext();
        using var b = tiny.Model.CreateContext();
        var stream = new Qwen3.Net.Engine.EvaluationRequest(a);
        var prompt = new Qwen3.Net.Engine.EvaluationRequest(b);
        List<Qwen3.Net.Engine.EvaluationRequest> returning = [stream];

        Qwen3.Net.Engine.BatchScheduler.AllReturned(returning, [prompt]).Should().BeFalse("a prompt that arrived first is not the stream");
        Qwen3.Net.Engine.BatchScheduler.AllReturned(returning, [prompt, stream]).Should().BeTrue();
        Qwen3.Net.Engine.BatchScheduler.AllReturned([], [prompt]).Should().BeTrue();
    }

    [Theory]
    [InlineData(1, 8, 8, 7)]  // one stream decoding on AVX-512: 8 tokens, one pass of the tile, not 9
    [InlineData(2, 8, 8, 6)]
    [InlineData(3, 8, 8, 5)]
    [InlineData(4, 8, 8, 8)]  // dropping 4 would halve the prompt's chunk: 12 tokens
    [InlineData(0, 8, 8, 8)]
    [InlineData(8, 8, 8, 8)]
    [InlineData(9, 8, 8, 7)]
    [InlineData(1, 8, 6, 5)]  // AVX2's tile of 6
    [InlineData(1, 8, 4, 7)]  // the int8 tile of 4
    [InlineData(1, 8, 1, 8)]  // no tile
    [InlineData(1, 4, 4, 4)]  // 1 + 3 would go to the matrix-vector kernels
    [InlineData(1, 2, 4, 2)]
    [InlineData(1, 1, 8, 1)]
    public void A_prompt_chunk_beside_decoding_streams_stops_at_a_whole_number_of_tile_passes(int decoding, int chunk, int tile, int expected) =>
        Qwen3.Net.Engine.BatchScheduler.InterleavedChunk(decoding, chunk, tile).Should().Be(expected);

    [Fact]
    public void Options_out_of_range_are_refused_naming_the_option()
    {
        FluentActions.Invoking(() => new Qwen3ModelOptions { MaxBatchTokens = 0 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxBatchTokens");
        FluentActions.Invoking(() => new Qwen3ModelOptions { MaxQueuedRequests = 0 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxQueuedRequests");
        FluentActions.Invoking(() => new Qwen3ModelOptions { RetainedCacheBytes = -1 }).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("RetainedCacheBytes");
        foreach (int threads in new[] { 0, 1025 })
        {
            FluentActions.Invoking(() => Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = threads }))
                .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("ThreadCount");
        }

        FluentActions.Invoking(() => Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { MaxBatchTokens = 16, InterleavedPrefillTokens = 32 }))
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*InterleavedPrefillTokens*");
    }
}

public sealed class ChatPrefillTests
{
    [Fact]
    public async Task A_long_chat_message_is_prefilled_in_whole_blocks()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        using var session = new Qwen3.Net.Chat.ChatSession(model, new Qwen3.Net.Chat.ChatSessionOptions
        {
            ThinkingMode = Qwen3.Net.Chat.ThinkingMode.Disabled,
            Sampling = SamplingOptions.Greedy with { MaxNewTokens = 1 },
        });
        string message = string.Join(' ', Enumerable.Range(0, 1000).Select(i => $"w{i % 97}"));
        long before = model.Scheduler.Steps;
        var turn = await session.GetResponseAsync(message);

        // One step per 512-token block and none for the one token generated (it comes from the prompt's logits):
        // the chat path evaluates the prompt as one request, as a direct Evaluate does.
        int prompt = turn.Usage.PromptTokens;
        prompt.Should().BeGreaterThan(1000);
        (model.Scheduler.Steps - before).Should().Be((prompt + 511) / 512);
    }
}
