using System.Numerics.Tensors;

namespace Qwen3.Net.Tests.Model;

/// <summary>
/// The forward pass against the tiny-qwen3 goldens (an independent float64 reference, cross-checked with llama.cpp):
/// logits within 1e-3, greedy continuations identical, hidden states within 1e-4 + 1e-4·|golden|.
/// </summary>
public class GoldenLogitsTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    private const float LogitTolerance = 1e-3f;

    public static TheoryData<string> CaseNames => new() { "single_token", "prompt_7", "prompt_300", "prompt_1100" };

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Logits_at_stored_positions_match_the_reference(string name)
    {
        var golden = tiny.Cases[name];
        float[] expected = TinyModel.ReadFloats(golden.LogitsFile);
        int vocab = tiny.Model.Config.VocabSize;
        using var ctx = tiny.Model.CreateContext();

        // Evaluating the prompt in pieces that end at each stored position also exercises appending to the cache.
        for (int row = 0; row < golden.LogitPositions.Length; row++)
        {
            int position = golden.LogitPositions[row];
            var logits = ctx.Evaluate(golden.PromptIds.AsSpan(ctx.Position, position + 1 - ctx.Position));
            AssertClose(logits, expected.AsSpan(row * vocab, vocab), LogitTolerance, $"{name} position {position}");
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Greedy_continuation_and_last_decode_step_match_the_reference(string name)
    {
        var golden = tiny.Cases[name];
        using var ctx = tiny.Model.CreateContext();
        var logits = ctx.Evaluate(golden.PromptIds);
        var generated = new List<int>();
        bool checkedDecodeStep = false;
        for (int step = 0; step < golden.GreedyNewIds.Length; step++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            generated.Add(next);
            if (step == golden.GreedyNewIds.Length - 1)
            {
                break;
            }

            logits = ctx.Evaluate([next]);
            if (ctx.Position - 1 == golden.DecodeLastPosition)
            {
                next.Should().Be(golden.DecodeLastInputId);
                AssertClose(logits, TinyModel.ReadFloats(golden.DecodeLastLogitsFile), LogitTolerance, $"{name} decode step at {golden.DecodeLastPosition}");
                checkedDecodeStep = true;
            }
        }

        generated.Should().Equal(golden.GreedyNewIds);
        checkedDecodeStep.Should().BeTrue();
    }

    [Fact]
    public void Hidden_states_of_every_layer_match_the_reference()
    {
        var golden = tiny.Cases["prompt_7"];
        int hidden = tiny.Model.Config.HiddenSize;
        float[] expected = TinyModel.ReadFloats("prompt_7.hidden_last_pos.f32");
        var seen = new float[expected.Length];
        using var ctx = tiny.Model.CreateContext();
        ctx.Observer = (index, h) => h.CopyTo(seen.AsSpan(index * hidden, hidden));

        ctx.Evaluate(golden.PromptIds);

        for (int i = 0; i < expected.Length; i++)
        {
            Math.Abs(seen[i] - expected[i]).Should().BeLessThanOrEqualTo(1e-4f + 1e-4f * Math.Abs(expected[i]), $"row {i / hidden}, element {i % hidden}");
        }
    }

    [Fact]
    public void Prefill_in_one_call_token_by_token_and_in_chunks_agree()
    {
        int[] prompt = tiny.Cases["prompt_300"].PromptIds;
        float[] whole = Run(ctx => ctx.Evaluate(prompt).ToArray());
        float[] oneByOne = Run(ctx =>
        {
            float[] last = [];
            foreach (int token in prompt)
            {
                last = ctx.Evaluate([token]).ToArray();
            }

            return last;
        });
        float[] chunks = Run(ctx =>
        {
            float[] last = [];
            for (int start = 0; start < prompt.Length; start += 37)
            {
                last = ctx.Evaluate(prompt.AsSpan(start, Math.Min(37, prompt.Length - start))).ToArray();
            }

            return last;
        });

        // Different block sizes sum in different orders, so agreement is to float32 rounding, far inside the golden tolerance.
        AssertClose(oneByOne, whole, 1e-4f, "token by token vs one call");
        AssertClose(chunks, whole, 1e-4f, "chunks of 37 vs one call");
        TensorPrimitives.IndexOfMax(whole).Should().Be(tiny.Cases["prompt_300"].GreedyNewIds[0]);
    }

    [Fact]
    public void Truncate_then_reevaluate_reproduces_the_same_logits()
    {
        int[] prompt = tiny.Cases["prompt_300"].PromptIds;
        using var ctx = tiny.Model.CreateContext();
        float[] first = ctx.Evaluate(prompt).ToArray();
        ctx.Evaluate([1, 2, 3]);

        ctx.Truncate(200);
        ctx.Position.Should().Be(200);
        float[] again = ctx.Evaluate(prompt.AsSpan(200)).ToArray();

        ctx.Position.Should().Be(prompt.Length);
        AssertClose(again, first, 1e-4f, "after truncating to 200 and re-evaluating");
    }

    private float[] Run(Func<InferenceContext, float[]> body)
    {
        using var ctx = tiny.Model.CreateContext();
        return body(ctx);
    }

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, float tolerance, string what)
    {
        actual.Length.Should().Be(expected.Length, what);
        float worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            float diff = Math.Abs(actual[i] - expected[i]);
            float.IsFinite(actual[i]).Should().BeTrue($"{what}: logit {i} is {actual[i]}");
            if (diff > worst)
            {
                worst = diff;
                worstIndex = i;
            }
        }

        worst.Should().BeLessThanOrEqualTo(tolerance, $"{what}: worst logit {worstIndex} is {(worstIndex >= 0 ? actual[worstIndex] : 0)} vs {(worstIndex >= 0 ? expected[worstIndex] : 0)}");
    }
}

/// <summary>The same goldens with the weights kept packed (<see cref="Qwen3ModelOptions.PackedWeights"/>), decode steps through the prompt tile.</summary>
public sealed class PackedGoldenLogitsTests(TinyPackedModel tiny) : GoldenLogitsTests(tiny), IClassFixture<TinyPackedModel>;
