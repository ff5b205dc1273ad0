using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Benchmarks.Constraints;

/// <summary>
/// Times <see cref="TokenMatcher.FillMask"/> on the real Qwen3 vocabulary along random walks through JSON schemas,
/// once with the mask cache off (every step walks the vocabulary trie) and once with it on (the steady state).
/// </summary>
public static class JsonMaskBenchmark
{
    private static readonly (string Name, string Schema)[] Schemas =
    [
        ("person", """
            {"type":"object","properties":{"name":{"type":"string","maxLength":40},"age":{"type":"integer","minimum":0,"maximum":150},
             "email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},
             "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city"]}},
             "required":["name","age"],"additionalProperties":false}
            """),
        ("tool-call", """
            {"type":"object","properties":{"name":{"enum":["get_weather","search_web","send_email"]},
             "arguments":{"anyOf":[
               {"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city"]},
               {"type":"object","properties":{"query":{"type":"string"},"top_k":{"type":"integer","minimum":1,"maximum":20}},"required":["query"]},
               {"type":"object","properties":{"to":{"type":"string","format":"email"},"subject":{"type":"string"},"body":{"type":"string"}},"required":["to","body"]}]}},
             "required":["name","arguments"]}
            """),
        ("any-object", ""),
    ];

    public static int Run(int walks, int seed, TextWriter output)
    {
        string tokenizerPath = Path.Combine(RepositoryPaths.TinyQwen3Fixture, "tokenizer.json");
        var stopwatch = Stopwatch.StartNew();
        TokenVocabulary vocabulary = TokenVocabulary.FromTokenizer(Qwen3Tokenizer.FromFile(tokenizerPath));
        output.WriteLine($"vocabulary: {vocabulary.Size} ids, trie {vocabulary.Trie.NodeCount} nodes, built with the tokenizer in {stopwatch.Elapsed.TotalMilliseconds:F0} ms");
        output.WriteLine($"{"schema",-11} {"cache",-5} {"steps",6} {"p50 µs",8} {"p90 µs",8} {"p99 µs",8} {"max µs",8} {"compile ms",10}");
        foreach ((string name, string schema) in Schemas)
        {
            foreach (bool cached in new[] { false, true })
            {
                var limits = GrammarLimits.Default with { MaxCachedMasks = cached ? GrammarLimits.Default.MaxCachedMasks : 0 };
                stopwatch.Restart();
                CompiledGrammar grammar = schema.Length == 0
                    ? CompiledGrammar.AnyJsonObject(vocabulary, limits)
                    : CompiledGrammar.FromJsonSchema(JsonDocument.Parse(schema).RootElement, vocabulary, limits);
                double compileMs = stopwatch.Elapsed.TotalMilliseconds;
                List<double> times = Walk(grammar, walks, seed);
                times.Sort();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-11} {(cached ? "on" : "off"),-5} {times.Count,6} {Percentile(times, 0.5),8:F1} {Percentile(times, 0.9),8:F1} {Percentile(times, 0.99),8:F1} {times[^1],8:F1} {compileMs,10:F1}"));
            }
        }

        return 0;
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>Random tokens from the mask; after 40 steps, the walk prefers ending, closing characters, then single bytes.</summary>
    private static List<double> Walk(CompiledGrammar grammar, int walks, int seed)
    {
        var times = new List<double>();
        var mask = new ulong[grammar.Vocabulary.MaskWords];
        var allowed = new List<int>();
        var random = new Random(seed);
        for (int walk = 0; walk < walks; walk++)
        {
            TokenMatcher matcher = grammar.CreateMatcher();
            for (int step = 0; !matcher.IsTerminated && step < 1000; step++)
            {
                long start = Stopwatch.GetTimestamp();
                matcher.FillMask(mask);
                times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                allowed.Clear();
                for (int id = 0; id < grammar.Vocabulary.Size; id++)
                {
                    if ((mask[id >> 6] & (1UL << id)) != 0)
                    {
                        allowed.Add(id);
                    }
                }

                if (!matcher.AcceptToken(Pick(grammar.Vocabulary, allowed, random, step > 40)))
                {
                    throw new InvalidOperationException("A token from the mask was refused.");
                }
            }
        }

        return times;
    }

    private static int Pick(TokenVocabulary vocabulary, List<int> allowed, Random random, bool finish)
    {
        if (finish)
        {
            int end = allowed.FindIndex(vocabulary.IsEndToken);
            if (end >= 0)
            {
                return allowed[end];
            }

            foreach (Predicate<int> preferred in new Predicate<int>[] { id => vocabulary.TokenBytes(id) is [(byte)'"' or (byte)']' or (byte)'}', ..], id => vocabulary.TokenBytes(id).Length == 1 })
            {
                List<int> subset = allowed.FindAll(preferred);
                if (subset.Count > 0)
                {
                    return subset[random.Next(subset.Count)];
                }
            }
        }

        return allowed[random.Next(allowed.Count)];
    }
}
