using Qwen3.Net.Retrieval;
using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Retrieval;

public sealed class EmbedderTests(LoadedEmbedder loaded) : IClassFixture<LoadedEmbedder>
{
    private readonly Qwen3Embedder _embedder = loaded.Value;

    [Fact]
    public async Task The_final_hidden_state_equals_the_golden_after_the_final_norm()
    {
        var (prompt, expected) = GoldenFinalHiddenState();
        int hidden = _embedder.Dimensions;

        using var context = _embedder.Model.CreateContext();
        float[] actual = (await context.EvaluateHiddenAsync(prompt)).ToArray();

        for (int i = 0; i < hidden; i++)
        {
            Math.Abs(actual[i] - expected[i]).Should().BeLessThanOrEqualTo(1e-4f + 1e-4f * Math.Abs(expected[i]), $"element {i}");
        }
    }

    [Fact]
    public async Task An_embedding_is_the_L2_normalized_golden_final_hidden_state()
    {
        var (prompt, expected) = GoldenFinalHiddenState();
        int hidden = _embedder.Dimensions;
        double norm = Math.Sqrt(expected.Sum(v => (double)v * v));

        float[] embedding = (await _embedder.EmbedTokensAsync([prompt]))[0];

        // The golden tolerance on the hidden state, scaled by the normalization.
        for (int i = 0; i < hidden; i++)
        {
            Math.Abs(embedding[i] - expected[i] / norm).Should().BeLessThanOrEqualTo((1e-4 + 1e-4 * Math.Abs(expected[i])) / norm, $"element {i}");
        }

        Math.Sqrt(embedding.Sum(v => (double)v * v)).Should().BeApproximately(1, 1e-6);
    }

    [Fact]
    public async Task A_batch_gives_the_vectors_of_one_text_at_a_time()
    {
        string[] texts = RetrievalFixtures.MixedTexts();
        var single = new List<float[]>();
        foreach (string text in texts)
        {
            single.Add(await _embedder.EmbedAsync(text));
        }

        long batchedBefore = _embedder.Model.Scheduler.BatchedSteps;
        float[][] batch = await _embedder.EmbedAsync(texts);

        _embedder.Model.Scheduler.BatchedSteps.Should().BeGreaterThan(batchedBefore, "the texts must share forward passes");
        batch.Should().HaveCount(texts.Length);
        for (int t = 0; t < texts.Length; t++)
        {
            batch[t].Should().HaveCount(_embedder.Dimensions);
            for (int i = 0; i < batch[t].Length; i++)
            {
                Math.Abs(batch[t][i] - single[t][i]).Should().BeLessThanOrEqualTo(1e-5f, $"text {t}, element {i}");
            }
        }
    }

    [Fact]
    public async Task Long_texts_run_in_whole_blocks_not_in_the_small_chunks_kept_for_decoding_streams()
    {
        // 8 texts of 300 tokens, all queued before the first step: 2400 tokens fill exactly 5 steps of 512. A text
        // ending must not make the next step a small chunk, as a decoding stream's end does.
        int[][] inputs = Enumerable.Range(0, 8).Select(t => Enumerable.Range(1000 + t * 300, 300).ToArray()).ToArray();
        var scheduler = _embedder.Model.Scheduler;
        long before = scheduler.Steps;
        scheduler.Hold(true);
        var embedding = _embedder.EmbedTokensAsync(inputs);
        bool linedUp = SpinWait.SpinUntil(() => scheduler.InFlightRequests == inputs.Length, TimeSpan.FromSeconds(60));
        scheduler.Hold(false);
        linedUp.Should().BeTrue("every text is queued (the embedder runs up to MaxBatchSequences at once)");
        await embedding;

        (scheduler.Steps - before).Should().Be(5);
    }

    [Fact]
    public async Task Different_texts_give_different_vectors()
    {
        float[][] vectors = await _embedder.EmbedAsync(["The capital of France is Paris.", "Gravity attracts bodies."]);
        vectors[0].Zip(vectors[1], (a, b) => Math.Abs(a - b)).Max().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public async Task Fewer_dimensions_are_the_first_ones_renormalized()
    {
        const string text = "Matryoshka representation learning";
        float[] full = await _embedder.EmbedAsync(text);
        float[] cut = await _embedder.EmbedAsync(text, dimensions: 32);

        cut.Should().HaveCount(32);
        double norm = Math.Sqrt(full.Take(32).Sum(v => (double)v * v));
        for (int i = 0; i < 32; i++)
        {
            cut[i].Should().BeApproximately((float)(full[i] / norm), 1e-6f);
        }
    }

    [Fact]
    public void Text_is_tokenized_with_endoftext_appended_and_queries_take_the_instruction()
    {
        Qwen3Embedder.FormatQuery("Find passages", "what is RAG?").Should().Be("Instruct: Find passages\nQuery:what is RAG?");
        int[] tokens = _embedder.Tokenize("Hello world");
        tokens[^1].Should().Be(151643);
        tokens[..^1].Should().Equal(_embedder.Model.Tokenizer.Encode("Hello world"));
    }

    [Fact]
    public async Task Empty_inputs_oversized_inputs_and_dimensions_out_of_range_are_refused()
    {
        await _embedder.Invoking(e => e.EmbedAsync(Array.Empty<string>())).Should().ThrowAsync<ArgumentException>().WithMessage("At least one input*");
        await _embedder.Invoking(e => e.EmbedAsync(["ok", ""])).Should().ThrowAsync<ArgumentException>().WithMessage("Text 1 is empty*");
        await _embedder.Invoking(e => e.EmbedTokensAsync([[1, 2], []])).Should().ThrowAsync<ArgumentException>().WithMessage("Input 1 is empty*");
        int limit = _embedder.MaxInputTokens;
        await _embedder.Invoking(e => e.EmbedTokensAsync([new int[limit + 1]])).Should().ThrowAsync<ArgumentException>()
            .WithMessage($"Input 0 has {limit + 1} tokens; the model takes at most {limit}*");
        await _embedder.Invoking(e => e.EmbedTokensAsync([[-1]])).Should().ThrowAsync<ArgumentOutOfRangeException>();
        await _embedder.Invoking(e => e.EmbedAsync("x", dimensions: 0)).Should().ThrowAsync<ArgumentOutOfRangeException>().WithParameterName("dimensions");
        await _embedder.Invoking(e => e.EmbedAsync("x", dimensions: _embedder.Dimensions + 1)).Should().ThrowAsync<ArgumentOutOfRangeException>().WithParameterName("dimensions");
        _embedder.Model.Scheduler.InFlightRequests.Should().Be(0);
    }

    [Fact]
    public async Task A_cancelled_call_throws_and_leaves_the_model_usable()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await _embedder.Invoking(e => e.EmbedAsync(RetrievalFixtures.MixedTexts(), cancellationToken: cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();
        (await _embedder.EmbedAsync("still works")).Should().HaveCount(_embedder.Dimensions);
    }

    [Fact]
    public async Task The_layout_without_the_model_prefix_gives_the_same_embeddings()
    {
        using var variant = RetrievalFixtures.WithoutModelPrefix();
        using var renamed = RetrievalFixtures.LoadEmbedder(variant.Path);
        const string text = "The capital of France is Paris.";
        (await renamed.EmbedAsync(text)).Should().Equal(await _embedder.EmbedAsync(text));
    }

    [Fact]
    public async Task An_untied_checkpoint_without_lm_head_loads_for_embeddings_but_computes_no_logits()
    {
        using var variant = RetrievalFixtures.WithoutModelPrefix(config => config["tie_word_embeddings"] = false);
        using var headless = RetrievalFixtures.LoadEmbedder(variant.Path);

        (await headless.EmbedAsync("hello")).Should().Equal(await _embedder.EmbedAsync("hello"));
        using var context = headless.Model.CreateContext();
        context.Invoking(c => c.Evaluate([1, 2])).Should().Throw<InvalidOperationException>().WithMessage("*no output head*");
    }

    [Fact]
    public void A_layout_that_fits_neither_is_refused_naming_both()
    {
        using var variant = TinyModelVariant.Create((name, values, shape) => [(name.Replace("model.", "transformer.", StringComparison.Ordinal), "BF16", shape, values)]);
        var act = () => RetrievalFixtures.LoadEmbedder(variant.Path);
        act.Should().Throw<ModelLoadException>().WithMessage("*neither 'model.embed_tokens.weight'*nor 'embed_tokens.weight'*");
    }

    /// <summary>
    /// prompt_7's tokens and golden row 3 of its hidden states: the state after model.norm at the last prompt position
    /// (the fixture README).
    /// </summary>
    private (int[] Prompt, float[] Expected) GoldenFinalHiddenState()
    {
        float[] stored = TinyModel.ReadFloats("prompt_7.hidden_last_pos.f32");
        int hidden = _embedder.Dimensions;
        return (TinyModel.ReadCases()["prompt_7"].PromptIds, stored.AsSpan(3 * hidden, hidden).ToArray());
    }
}
