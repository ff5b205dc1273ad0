using Qwen3.Net.Generation;

namespace Qwen3.Net.Benchmarks.Constraints;

/// <summary>
/// End-to-end decode time per token with and without a JSON-schema constraint, in alternating rounds on one model:
/// the difference is what the mask (fill, apply, accept) adds to a step.
/// </summary>
internal static class ConstrainedDecodeBenchmark
{
    // Long string values keep the constrained run going for the whole budget, as an answer with text fields does.
    private const string Schema = """{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},"note":{"type":"string"},"n":{"type":"integer"}},"required":["name","note","n"]},"minItems":50}""";

    public static int Run(string modelFolder, int threads, int tokens, int rounds, TextWriter output)
    {
        using var model = Qwen3Model.Load(modelFolder, new Qwen3ModelOptions { ThreadCount = threads });
        var prompt = model.Tokenizer.Encode("Write a long JSON list of people with notes:").ToArray();
        var format = ResponseFormat.ForJsonSchema(Schema);
        var free = new List<double>();
        var constrained = new List<double>();
        var steps = new List<int>();
        for (int round = 0; round <= rounds; round++)
        {
            // Round 0 warms the JIT, the model and the grammar's DFA and mask caches; it is not counted.
            double a = Decode(model, prompt, tokens, (ulong)round, null, out _);
            double b = Decode(model, prompt, tokens, (ulong)round, format, out int constrainedSteps);
            if (round > 0)
            {
                free.Add(a);
                constrained.Add(b);
                steps.Add(constrainedSteps);
            }
        }

        free.Sort();
        constrained.Sort();
        double f = free[free.Count / 2];
        double c = constrained[constrained.Count / 2];
        output.WriteLine($"model {Path.GetFileName(Path.GetFullPath(modelFolder))}, {threads} threads, {tokens} tokens x {rounds} rounds (median), constrained steps per round {steps.Min()}-{steps.Max()}");
        output.WriteLine($"unconstrained {f * 1000:F1} us/token, constrained {c * 1000:F1} us/token, overhead {(c - f) * 1000:F1} us/token ({c / f:F3}x)");
        return 0;
    }

    /// <summary>Milliseconds per generated token of one sampled generation.</summary>
    private static double Decode(Qwen3Model model, int[] prompt, int tokens, ulong seed, ResponseFormat? format, out int constrainedSteps)
    {
        using var context = model.CreateContext();
        var generator = new Generator(context);
        var options = new GenerationOptions
        {
            Sampling = new SamplingOptions { Temperature = 1f, TopK = 40, Seed = seed, MaxNewTokens = tokens },
            ResponseFormat = format,
        };
        GenerationUsage? usage = null;
        foreach (var update in generator.GenerateAsync(prompt, options).ToBlockingEnumerable())
        {
            usage = update.Usage ?? usage;
        }

        constrainedSteps = usage!.ConstrainedSteps;
        return usage.DecodeTime.TotalMilliseconds / usage.GeneratedTokens;
    }
}
