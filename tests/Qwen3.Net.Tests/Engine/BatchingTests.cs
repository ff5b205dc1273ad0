using System.Numerics.Tensors;
using Qwen3.Net.Kernels;
using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Engine;

/// <summary>
/// A sequence's results do not depend on what it is batched with: each golden case runs while other sequences join,
/// decode and leave at random steps, sharing the model's forward passes, and must still match the float64 reference.
/// </summary>
public class BatchingTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    private const float LogitTolerance = 1e-3f;

    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string name in new[] { "single_token", "prompt_7", "prompt_300", "prompt_1100" })
        {
            data.Add(name, 1, 11);
            data.Add(name, 3, 12);
            data.Add(name, 7, 13);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_golden_sequence_batched_with_others_matches_the_reference(string name, int companions, int seed)
    {
        var scheduler = tiny.Model.Scheduler;
        using var others = new Companions(tiny.Model, companions, seed);
        others.WaitUntilRunning();
        long batchedBefore = scheduler.BatchedSteps;

        // The golden prompt is lined up with a companion's next request, so at least its first step is shared whatever
        // the host's scheduling does; later steps share as the companions come and go.
        using var ctx = tiny.Model.CreateContext();
        scheduler.Hold(true);
        var golden = Task.Run(() => RunGolden(ctx, tiny.Cases[name], prefixLength: 0));
        bool linedUp = SpinWait.SpinUntil(() => scheduler.Parked && scheduler.InFlightRequests >= companions + 1, TimeSpan.FromSeconds(60));
        scheduler.Hold(false);
        linedUp.Should().BeTrue("the golden sequence and every companion are queued (each has at most one request in flight)");
        await golden;

        scheduler.BatchedSteps.Should().BeGreaterThan(batchedBefore, "the golden sequence must have shared steps with the others");
        others.Stop();
    }

    [Fact]
    public async Task Sequences_decoding_in_one_step_get_the_logits_each_gets_alone_bit_for_bit()
    {
        // A step of decoding tokens only takes the matrix-vector kernels for up to MatMul.DecodeMaxTokens tokens (eight on
        // Intel with AVX-512), and those sum every token as they sum one token alone.
        int n = MatMul.DecodeMaxTokens(KernelPaths.Default);
        var scheduler = tiny.Model.Scheduler;
        var alone = new List<InferenceContext>();
        var together = new List<InferenceContext>();
        try
        {
            var next = new int[n];
            var expected = new float[n][];
            for (int i = 0; i < n; i++)
            {
                int[] prompt = [.. Enumerable.Range(3000 + 50 * i, 5 + i)];
                alone.Add(tiny.Model.CreateContext());
                together.Add(tiny.Model.CreateContext());
                next[i] = Greedy(alone[i].Evaluate(prompt));
                together[i].Evaluate(prompt);
                expected[i] = alone[i].Evaluate([next[i]]).ToArray();
            }

            long steps = scheduler.Steps;
            scheduler.Hold(true);
            var runs = Enumerable.Range(0, n).Select(i => Task.Run(() => together[i].Evaluate([next[i]]).ToArray())).ToArray();
            bool linedUp = SpinWait.SpinUntil(() => scheduler.Parked && scheduler.InFlightRequests >= n, TimeSpan.FromSeconds(60));
            scheduler.Hold(false);
            linedUp.Should().BeTrue("every sequence's next token is queued");
            float[][] actual = await Task.WhenAll(runs);

            (scheduler.Steps - steps).Should().Be(1, $"the {n} decoding tokens run in one step");
            for (int i = 0; i < n; i++)
            {
                actual[i].Should().Equal(expected[i], $"sequence {i} of {n} decoding together");
            }
        }
        finally
        {
            alone.Concat(together).ToList().ForEach(c => c.Dispose());
        }
    }

    private static int Greedy(ReadOnlySpan<float> logits) => TensorPrimitives.IndexOfMax(logits);

    [Theory]
    [InlineData("prompt_300", 3)]
    [InlineData("prompt_1100", 3)]
    public void A_sequence_on_shared_prefix_pages_matches_the_reference(string name, int companions)
    {
        var golden = tiny.Cases[name];
        using var first = tiny.Model.CreateContext();
        first.Evaluate(golden.PromptIds);

        using var others = new Companions(tiny.Model, companions, 7);
        others.WaitUntilRunning();
        using var second = tiny.Model.CreateContext();
        int shared = RunGolden(second, golden, prefixLength: 0);
        shared.Should().Be((golden.PromptIds.Length - 1) / 256 * 256, "every full page before the last token comes from the first context");
        others.Stop();
    }

    [Fact]
    public void Writing_into_a_shared_page_copies_it_and_leaves_the_other_sequence_unchanged()
    {
        var golden = tiny.Cases["prompt_1100"];
        using var owner = tiny.Model.CreateContext();
        owner.Evaluate(golden.PromptIds.AsSpan(0, 1000));

        // The second context takes the first three pages, then rewinds into the middle of page 1 and writes other tokens.
        using var other = tiny.Model.CreateContext();
        other.Evaluate(golden.PromptIds.AsSpan(0, 800));
        other.SharedTokens.Should().Be(768);
        other.Truncate(400);
        other.Evaluate([.. Enumerable.Range(5000, 300)]);

        // The owner's cache still holds the golden prefix: finishing its prompt gives the golden logits.
        var logits = owner.Evaluate(golden.PromptIds.AsSpan(1000));
        float[] expected = TinyModel.ReadFloats(golden.LogitsFile);
        int vocab = tiny.Model.Config.VocabSize;
        int row = Array.IndexOf(golden.LogitPositions, golden.PromptIds.Length - 1);
        AssertClose(logits, expected.AsSpan(row * vocab, vocab), "owner after the other wrote into a shared page");
    }

    [Fact]
    public async Task Cancelling_one_sequence_in_a_running_batch_leaves_the_others_unchanged()
    {
        var golden = tiny.Cases["prompt_300"];
        using var cancelled = tiny.Model.CreateContext();
        using var cts = new CancellationTokenSource();
        var prompt = Enumerable.Range(7000, 4000).ToArray();
        var longPrompt = Task.Run(() =>
        {
            cancelled.Evaluate(prompt, cts.Token);
        });

        using var ctx = tiny.Model.CreateContext();
        var logits = ctx.Evaluate(golden.PromptIds).ToArray();
        cts.Cancel();
        await FluentActions.Awaiting(() => longPrompt).Should().ThrowAsync<OperationCanceledException>();
        cancelled.Position.Should().BeLessThan(prompt.Length, "the rest of the prompt was not evaluated");
        cancelled.Tokens.ToArray().Should().Equal(prompt.Take(cancelled.Position), "what was evaluated is kept");

        int vocab = tiny.Model.Config.VocabSize;
        float[] expected = TinyModel.ReadFloats(golden.LogitsFile);
        int row = Array.IndexOf(golden.LogitPositions, golden.PromptIds.Length - 1);
        AssertClose(logits, expected.AsSpan(row * vocab, vocab), "prompt_300 beside a cancelled sequence");
        var generated = Greedy(ctx, logits, golden.GreedyNewIds.Length);
        generated.Should().Equal(golden.GreedyNewIds);
    }

    /// <summary>Evaluates the golden prompt, checks its last logits and greedy continuation; returns the shared tokens.</summary>
    private int RunGolden(InferenceContext ctx, GoldenCase golden, int prefixLength)
    {
        int vocab = tiny.Model.Config.VocabSize;
        float[] expected = TinyModel.ReadFloats(golden.LogitsFile);
        var logits = ctx.Evaluate(golden.PromptIds.AsSpan(prefixLength)).ToArray();
        int shared = ctx.SharedTokens;
        int row = Array.IndexOf(golden.LogitPositions, golden.PromptIds.Length - 1);
        row.Should().BeGreaterThanOrEqualTo(0, "the goldens store the last prompt position");
        AssertClose(logits, expected.AsSpan(row * vocab, vocab), $"{golden.Name} last prompt position");
        Greedy(ctx, logits, golden.GreedyNewIds.Length).Should().Equal(golden.GreedyNewIds, $"{golden.Name} greedy continuation");
        return shared;
    }

    private static List<int> Greedy(InferenceContext ctx, float[] logits, int count)
    {
        var generated = new List<int>();
        for (int step = 0; step < count; step++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            generated.Add(next);
            if (step < count - 1)
            {
                logits = ctx.Evaluate([next]).ToArray();
            }
        }

        return generated;
    }

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        actual.Length.Should().Be(expected.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            if (Math.Abs(actual[i] - expected[i]) > LogitTolerance)
            {
                Assert.Fail($"{what}: logit {i} is {actual[i]}, expected {expected[i]} ± {LogitTolerance}");
            }
        }
    }

    /// <summary>
    /// Threads that keep creating contexts, evaluating random prompts (1 to 300 tokens, sometimes starting with a
    /// prefix of another's), decoding a random number of tokens and disposing them, until stopped.
    /// </summary>
    protected sealed class Companions : IDisposable
    {
        private readonly Thread[] _threads;
        private readonly CountdownEvent _started;
        private readonly Qwen3Model _model;
        private volatile bool _stop;
        private Exception? _failure;

        public Companions(Qwen3Model model, int count, int seed)
        {
            _model = model;
            _started = new CountdownEvent(count);
            _threads = [.. Enumerable.Range(0, count).Select(i => new Thread(() => Run(new Random(seed * 100 + i))) { IsBackground = true })];
            foreach (var thread in _threads)
            {
                thread.Start();
            }
        }

        public void WaitUntilRunning() => _started.Wait();

        public void Stop()
        {
            _stop = true;
            foreach (var thread in _threads)
            {
                thread.Join();
            }

            if (_failure is not null)
            {
                throw new InvalidOperationException("A companion sequence failed.", _failure);
            }
        }

        public void Dispose()
        {
            _stop = true;
            foreach (var thread in _threads)
            {
                thread.Join();
            }

            _started.Dispose();
        }

        private void Run(Random random)
        {
            bool signalled = false;
            try
            {
                while (!_stop)
                {
                    using var ctx = _model.CreateContext(2048);
                    var prompt = Enumerable.Range(0, random.Next(1, 300)).Select(_ => random.Next(0, 150_000)).ToArray();
                    var logits = ctx.Evaluate(prompt);
                    if (!signalled)
                    {
                        _started.Signal();
                        signalled = true;
                    }

                    int decode = random.Next(1, 40);
                    for (int i = 0; i < decode && !_stop; i++)
                    {
                        logits = ctx.Evaluate([TensorPrimitives.IndexOfMax(logits)]);
                    }
                }
            }
            catch (Exception e)
            {
                _failure = e;
                if (!signalled)
                {
                    _started.Signal();
                }
            }
        }
    }
}

/// <summary>
/// The same batches with the weights kept packed (<see cref="Qwen3ModelOptions.PackedWeights"/>); and, since every token
/// count then takes the same kernel, a sequence's logits are the same bit for bit alone and batched.
/// </summary>
public sealed class PackedBatchingTests(TinyPackedModel tiny) : BatchingTests(tiny), IClassFixture<TinyPackedModel>
{
    [Fact]
    public void A_sequence_gets_the_same_logits_bit_for_bit_alone_and_batched()
    {
        var golden = tiny.Cases["prompt_300"];
        var alone = Run();
        var scheduler = tiny.Model.Scheduler;
        long batchedBefore = scheduler.BatchedSteps;
        using (var others = new Companions(tiny.Model, 3, seed: 17))
        {
            others.WaitUntilRunning();
            var batched = Run();
            others.Stop();
            scheduler.BatchedSteps.Should().BeGreaterThan(batchedBefore, "the sequence must have shared steps with the others");
            batched.Should().HaveCount(alone.Count);
            for (int i = 0; i < alone.Count; i++)
            {
                batched[i].Should().Equal(alone[i], $"step {i}'s logits (0: the prompt's last) do not depend on the batch");
            }
        }

        List<float[]> Run()
        {
            using var ctx = tiny.Model.CreateContext();
            var steps = new List<float[]> { ctx.Evaluate(golden.PromptIds).ToArray() };
            for (int i = 0; i < 24; i++)
            {
                steps.Add(ctx.Evaluate([TensorPrimitives.IndexOfMax(steps[^1])]).ToArray());
            }

            return steps;
        }
    }
}
