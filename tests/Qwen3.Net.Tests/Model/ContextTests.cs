namespace Qwen3.Net.Tests.Model;

public sealed class ContextTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    [Fact]
    public void Going_past_the_capacity_throws_before_evaluating_anything()
    {
        using var ctx = tiny.Model.CreateContext(capacity: 10);
        ctx.Evaluate([1, 2, 3, 4, 5, 6, 7, 8]);

        Action act = () => ctx.Evaluate([9, 10, 11]);

        act.Should().Throw<ContextOverflowException>()
            .Where(e => e.Position == 8 && e.Requested == 3 && e.Capacity == 10 && e.Message.Contains("10"));
        ctx.Position.Should().Be(8);
        ctx.Evaluate([9, 10]);
        ctx.Position.Should().Be(10);
    }

    [Fact]
    public void Disposed_contexts_return_their_pages_for_the_next_context_to_reuse()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        float[]? expected = null;
        for (int i = 0; i < 20; i++)
        {
            using var ctx = model.CreateContext(capacity: 600);
            float[] logits = ctx.Evaluate([1, 2, 3]).ToArray();
            expected ??= logits;
            logits.Should().Equal(expected, "a recycled page holds stale keys that must never be read");
        }

        model.PagePool.AllocatedPages.Should().Be(1, "each context reused the page the one before it returned");
    }

    [Fact]
    public void A_capacity_beyond_max_position_embeddings_is_refused()
    {
        int max = tiny.Model.Config.MaxPositionEmbeddings;

        var act = () => tiny.Model.CreateContext(max + 1);

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("capacity");
        using var full = tiny.Model.CreateContext();
        full.Capacity.Should().Be(max);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(151936)]
    public void Token_ids_outside_the_vocabulary_are_refused(int token)
    {
        using var ctx = tiny.Model.CreateContext(100);

        Action act = () => ctx.Evaluate([1, token]);

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("tokens");
        ctx.Position.Should().Be(0);
    }

    [Fact]
    public void An_empty_token_list_is_refused()
    {
        using var ctx = tiny.Model.CreateContext(100);

        Action act = () => ctx.Evaluate([]);

        act.Should().Throw<ArgumentException>().WithParameterName("tokens");
    }

    [Fact]
    public void Truncate_beyond_the_position_is_refused()
    {
        using var ctx = tiny.Model.CreateContext(100);
        ctx.Evaluate([1, 2, 3]);

        ctx.Invoking(c => c.Truncate(4)).Should().Throw<ArgumentOutOfRangeException>();
        ctx.Invoking(c => c.Truncate(-1)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Many_contexts_on_many_threads_share_one_model_without_cross_talk()
    {
        int[][] prompts = [tiny.Cases["prompt_7"].PromptIds, tiny.Cases["prompt_300"].PromptIds, tiny.Cases["single_token"].PromptIds, tiny.Cases["prompt_7"].PromptIds];
        int[][] expected = prompts.Select(p => Greedy(p, 8)).ToArray();

        int[][] concurrent = new int[prompts.Length][];
        Parallel.For(0, prompts.Length, new ParallelOptions { MaxDegreeOfParallelism = prompts.Length }, i => concurrent[i] = Greedy(prompts[i], 8));

        concurrent.Should().BeEquivalentTo(expected, o => o.WithStrictOrdering());
    }

    [Fact]
    public void A_disposed_context_refuses_work()
    {
        var ctx = tiny.Model.CreateContext(100);
        ctx.Dispose();

        ctx.Invoking(c => { c.Evaluate([1]); }).Should().Throw<ObjectDisposedException>();
    }

    private int[] Greedy(int[] prompt, int count)
    {
        using var ctx = tiny.Model.CreateContext(prompt.Length + count);
        var logits = ctx.Evaluate(prompt);
        var ids = new int[count];
        for (int i = 0; i < count; i++)
        {
            ids[i] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
            if (i < count - 1)
            {
                logits = ctx.Evaluate([ids[i]]);
            }
        }

        return ids;
    }
}
