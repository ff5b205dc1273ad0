using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

public class SamplerTests
{
    private static float[] LogitsFromProbabilities(params double[] p) => p.Select(x => (float)Math.Log(x)).ToArray();

    private static Dictionary<int, double> Frequencies(SamplingOptions options, float[] logits, int draws)
    {
        var sampler = new Sampler(logits.Length, options, [], seed: 1);
        var counts = new Dictionary<int, double>();
        for (int i = 0; i < draws; i++)
        {
            int t = sampler.Sample(logits);
            counts[t] = counts.GetValueOrDefault(t) + 1.0 / draws;
        }

        return counts;
    }

    [Fact]
    public void Xoshiro_matches_the_reference_algorithm()
    {
        // Values from the published xoshiro256** and SplitMix64 reference code (run in Python).
        var random = new Xoshiro256(42);
        random.NextUInt64().Should().Be(0x15780b2e0c2ec716UL);
        random.NextUInt64().Should().Be(0x6104d9866d113a7eUL);
        random.NextUInt64().Should().Be(0xae17533239e499a1UL);
        random.NextUInt64().Should().Be(0xecb8ad4703b360a1UL);
    }

    [Fact]
    public void Temperature_zero_is_argmax_and_the_first_maximum_wins_ties()
    {
        var sampler = new Sampler(5, SamplingOptions.Greedy, [], seed: 0);
        sampler.Sample(new float[] { 0.1f, 3f, -2f, 3f, 1f }).Should().Be(1);
        sampler.Sample(new float[] { 9f, 3f, -2f, 3f, 1f }).Should().Be(0);
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_prompt_tokens()
    {
        var options = SamplingOptions.Greedy with { RepetitionPenalty = 2f };
        new Sampler(2, options, [0], seed: 0).Sample(new float[] { 2f, 1.5f }).Should().Be(1, "2 / 2 = 1 < 1.5");
        new Sampler(2, options, [0], seed: 0).Sample(new float[] { 2f, 0.5f }).Should().Be(0, "2 / 2 = 1 > 0.5");
        new Sampler(2, options, [0], seed: 0).Sample(new float[] { -1f, -1.5f }).Should().Be(1, "-1 * 2 = -2 < -1.5");
        new Sampler(2, SamplingOptions.Greedy, [0], seed: 0).Sample(new float[] { 2f, 1.5f }).Should().Be(0);
    }

    [Fact]
    public void Presence_penalty_applies_to_generated_tokens_only()
    {
        var options = SamplingOptions.Greedy with { PresencePenalty = 0.2f };
        var sampler = new Sampler(2, options, [0], seed: 0);
        float[] logits = [1f, 0.9f];
        sampler.Sample(logits).Should().Be(0, "a prompt token is not penalised by presence");
        sampler.Accept(0);
        sampler.Sample(logits).Should().Be(1, "1 - 0.2 < 0.9 once token 0 was generated");
    }

    [Fact]
    public void Unfiltered_sampling_follows_the_softmax_distribution()
    {
        var f = Frequencies(new SamplingOptions { Temperature = 1f }, LogitsFromProbabilities(0.5, 0.3, 0.2), 20000);
        f[0].Should().BeApproximately(0.5, 0.02);
        f[1].Should().BeApproximately(0.3, 0.02);
        f[2].Should().BeApproximately(0.2, 0.02);
    }

    [Fact]
    public void Temperature_sharpens_the_distribution()
    {
        // At T=0.5 the probabilities become p^2 normalised: 0.25/0.38, 0.09/0.38, 0.04/0.38.
        var f = Frequencies(new SamplingOptions { Temperature = 0.5f }, LogitsFromProbabilities(0.5, 0.3, 0.2), 20000);
        f[0].Should().BeApproximately(0.25 / 0.38, 0.02);
        f[2].Should().BeApproximately(0.04 / 0.38, 0.02);
    }

    [Fact]
    public void Top_p_keeps_tokens_while_the_mass_above_them_is_below_top_p()
    {
        var logits = LogitsFromProbabilities(0.2, 0.5, 0.3);
        var f = Frequencies(new SamplingOptions { TopP = 0.6f }, logits, 5000);
        f.Keys.Should().BeEquivalentTo([1, 2]);
        f[1].Should().BeApproximately(0.5 / 0.8, 0.03);

        Frequencies(new SamplingOptions { TopP = 0.5f }, logits, 500).Keys.Should().BeEquivalentTo([1]);
        Frequencies(new SamplingOptions { TopP = 0.81f }, logits, 5000).Keys.Should().BeEquivalentTo([0, 1, 2]);
    }

    [Fact]
    public void Top_k_keeps_the_k_best_tokens()
    {
        var logits = LogitsFromProbabilities(0.1, 0.25, 0.15, 0.3, 0.2);
        var f = Frequencies(new SamplingOptions { TopK = 2 }, logits, 5000);
        f.Keys.Should().BeEquivalentTo([1, 3]);
        f[3].Should().BeApproximately(0.3 / 0.55, 0.03);
    }

    [Fact]
    public void Top_k_selection_over_a_large_vocabulary_finds_the_best_tokens()
    {
        var rng = new Random(11);
        var logits = Enumerable.Range(0, 20000).Select(_ => (float)(rng.NextDouble() * 4)).ToArray();
        var best = logits.Select((score, id) => (score, id)).OrderByDescending(x => x.score).Take(5).Select(x => x.id).ToArray();
        Frequencies(new SamplingOptions { TopK = 5, Temperature = 5f }, logits, 3000).Keys.Should().BeEquivalentTo(best);
        Frequencies(new SamplingOptions { TopK = 0, Temperature = 0.01f, TopP = 0.01f }, logits, 50).Keys.Should().BeEquivalentTo([best[0]]);
    }

    [Fact]
    public void Min_p_drops_tokens_below_a_fraction_of_the_best()
    {
        var logits = LogitsFromProbabilities(0.2, 0.5, 0.3);
        Frequencies(new SamplingOptions { MinP = 0.5f }, logits, 5000).Keys.Should().BeEquivalentTo([1, 2]);
        Frequencies(new SamplingOptions { MinP = 0.61f }, logits, 500).Keys.Should().BeEquivalentTo([1]);
    }

    [Fact]
    public void The_same_seed_gives_the_same_tokens_and_another_seed_does_not()
    {
        var rng = new Random(7);
        var logits = Enumerable.Range(0, 1000).Select(_ => (float)rng.NextDouble()).ToArray();
        int[] Draw(ulong seed)
        {
            var sampler = new Sampler(logits.Length, new SamplingOptions { Seed = seed, TopK = 50 }, [], seed: 999);
            return Enumerable.Range(0, 64).Select(_ => sampler.Sample(logits)).ToArray();
        }

        Draw(5).Should().Equal(Draw(5));
        Draw(5).Should().NotEqual(Draw(6));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    public void Sampling_allocates_nothing_per_token(int topK)
    {
        var rng = new Random(3);
        var logits = Enumerable.Range(0, 5000).Select(_ => (float)rng.NextDouble() * 10).ToArray();
        var options = new SamplingOptions { TopK = topK, TopP = 0.9f, MinP = 0.01f, RepetitionPenalty = 1.1f, PresencePenalty = 0.5f, Seed = 1 };
        var sampler = new Sampler(logits.Length, options, [1, 2, 3], seed: 0);
        sampler.Accept(sampler.Sample(logits));

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            sampler.Accept(sampler.Sample(logits));
        }

        (GC.GetAllocatedBytesForCurrentThread() - before).Should().Be(0);
    }

    [Fact]
    public void Wrong_logits_length_is_rejected()
    {
        var sampler = new Sampler(4, SamplingOptions.Greedy, [], seed: 0);
        FluentActions.Invoking(() => sampler.Sample(new float[3])).Should().Throw<ArgumentException>();
    }
}
