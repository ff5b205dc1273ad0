using Qwen3.Net.Retrieval;
using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Retrieval;

public sealed class RerankerTests(LoadedReranker loaded) : IClassFixture<LoadedReranker>
{
    private readonly Qwen3Reranker _reranker = loaded.Value;

    [Fact]
    public void Yes_and_no_are_the_real_tokenizer_ids()
    {
        _reranker.YesId.Should().Be(9693);
        _reranker.NoId.Should().Be(2152);
        _reranker.Model.Tokenizer.Encode("yes").Should().Equal(9693);
        _reranker.Model.Tokenizer.Encode("no").Should().Equal(2152);
    }

    [Fact]
    public void The_prompt_is_the_model_cards_format()
    {
        int[] tokens = _reranker.EncodePair("What is the capital of China?", "The capital of China is Beijing.", "Find the answer");
        _reranker.Model.Tokenizer.Decode(tokens).Should().Be(
            "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n" +
            "<|im_start|>user\n<Instruct>: Find the answer\n<Query>: What is the capital of China?\n<Document>: The capital of China is Beijing.<|im_end|>\n" +
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
        _reranker.Model.Tokenizer.Decode(_reranker.EncodePair("q", "d")).Should().Contain($"<Instruct>: {Qwen3Reranker.DefaultInstruction}\n");
    }

    [Fact]
    public async Task The_score_is_the_softmax_of_the_no_and_yes_logits_at_the_last_position()
    {
        int[] prompt = _reranker.EncodePair("What is the capital of China?", "The capital of China is Beijing.");
        using var context = _reranker.Model.CreateContext();
        float[] logits = context.Evaluate(prompt).ToArray();
        double yes = logits[_reranker.YesId], no = logits[_reranker.NoId];
        double expected = Math.Exp(yes) / (Math.Exp(yes) + Math.Exp(no));

        double score = await _reranker.ScoreAsync("What is the capital of China?", "The capital of China is Beijing.");

        score.Should().BeApproximately(expected, 1e-5);
    }

    [Fact]
    public async Task Rerank_orders_by_score_and_keeps_the_top_n()
    {
        string[] documents = RetrievalFixtures.MixedTexts();
        var single = new List<double>();
        foreach (string d in documents)
        {
            single.Add(await _reranker.ScoreAsync("capital of France", d));
        }

        var all = await _reranker.RerankAsync("capital of France", documents);
        var top = await _reranker.RerankAsync("capital of France", documents, topN: 2);

        all.Select(r => r.Index).Should().BeEquivalentTo(Enumerable.Range(0, documents.Length));
        all.Select(r => r.Score).Should().BeInDescendingOrder();
        foreach (var r in all)
        {
            r.Score.Should().BeApproximately(single[r.Index], 1e-5);
        }

        top.Should().Equal(all.Take(2));
    }

    [Fact]
    public async Task Empty_documents_and_a_bad_top_n_are_refused()
    {
        await _reranker.Invoking(r => r.RerankAsync("q", Array.Empty<string>())).Should().ThrowAsync<ArgumentException>().WithMessage("At least one document*");
        await _reranker.Invoking(r => r.RerankAsync("q", ["d"], topN: 0)).Should().ThrowAsync<ArgumentOutOfRangeException>().WithParameterName("topN");
        int limit = _reranker.Model.Config.MaxPositionEmbeddings;
        await _reranker.Invoking(r => r.ScoreTokensAsync([new int[limit + 1]])).Should().ThrowAsync<ArgumentException>().WithMessage("Input 0 has*");
    }

    [Fact]
    public async Task The_layout_without_the_model_prefix_gives_the_same_scores()
    {
        using var variant = RetrievalFixtures.WithoutModelPrefix();
        using var renamed = RetrievalFixtures.LoadReranker(variant.Path);
        // Within 1e-6, not equal: a prompt arriving just after another request ended is cut into other chunks.
        (await renamed.ScoreAsync("q", "a document")).Should().BeApproximately(await _reranker.ScoreAsync("q", "a document"), 1e-6);
    }

    [Fact]
    public void An_untied_checkpoint_without_lm_head_is_refused_for_reranking()
    {
        using var variant = TinyModelVariant.Create(editConfig: config => config["tie_word_embeddings"] = false);
        var act = () => RetrievalFixtures.LoadReranker(variant.Path);
        act.Should().Throw<ModelLoadException>().Where(e => e.TensorName == "lm_head.weight");
    }
}
