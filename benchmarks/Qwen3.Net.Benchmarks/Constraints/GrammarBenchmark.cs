using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Benchmarks.Constraints;

/// <summary>
/// The costs of JSON-schema constrained decoding on the real Qwen3 vocabulary: the one-time vocabulary tables, schema
/// compile time, and <see cref="TokenMatcher.FillMask"/> latency along random walks, cold (a freshly compiled grammar
/// per walk, so every state is a first visit) and warm (a grammar that earlier walks have already used).
/// </summary>
public static class GrammarBenchmark
{
    private const string ToolChoiceName = "tool-call";

    private static readonly (string Name, string Schema)[] Schemas =
    [
        // The tools of tests/Qwen3.Net.Tests/Constraints/ConstrainedGenerationTests, as a forced tool call.
        (ToolChoiceName, """
            [{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":8},"unit":{"enum":["c","f"]}},"required":["city","unit"]}},
             {"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer","minimum":0,"maximum":99},"b":{"type":"integer","minimum":0,"maximum":99}},"required":["a","b"]}}]
            """),
        ("tool-args", """
            {"type":"object","properties":{"name":{"enum":["get_weather","search_web","send_email"]},
             "arguments":{"anyOf":[
               {"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city"]},
               {"type":"object","properties":{"query":{"type":"string"},"top_k":{"type":"integer","minimum":1,"maximum":20}},"required":["query"]},
               {"type":"object","properties":{"to":{"type":"string","format":"email"},"subject":{"type":"string"},"body":{"type":"string"}},"required":["to","body"]}]}},
             "required":["name","arguments"]}
            """),
        ("person", """
            {"type":"object","properties":{"name":{"type":"string","maxLength":40},"age":{"type":"integer","minimum":0,"maximum":150},
             "email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},
             "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city"]}},
             "required":["name","age"],"additionalProperties":false}
            """),
        ("formats", """
            {"type":"object","properties":{"email":{"type":"string","format":"email"},"id":{"type":"string","format":"uuid"},
             "at":{"type":"string","format":"date-time"},"user":{"type":"string","pattern":"^[a-z0-9_]{3,20}$"}},
             "required":["email","id","at","user"]}
            """),
        ("nested-30", NestedSchema()),
        ("long-strings", """
            {"type":"object","properties":{"title":{"type":"string","minLength":3,"maxLength":200},"body":{"type":"string","minLength":10,"maxLength":1000},
             "notes":{"type":"array","items":{"type":"string","maxLength":60},"maxItems":8}},"required":["title","body","notes"]}
            """),
        ("any-object", ""),
    ];

    /// <summary>Runs the benchmark on every schema, or on those named in <paramref name="only"/>.</summary>
    public static int Run(int walks, int compileRuns, int seed, string[]? only, TextWriter output)
    {
        (string Name, string Schema)[] schemas = only == null ? Schemas : Array.FindAll(Schemas, s => only.Contains(s.Name));
        if (only?.FirstOrDefault(name => !Array.Exists(Schemas, s => s.Name == name)) is { } unknown)
        {
            throw new ArgumentException($"Unknown schema '{unknown}' (known: {string.Join(", ", Schemas.Select(s => s.Name))}).");
        }

        output.WriteLine($"load average {File.ReadAllText("/proc/loadavg").Trim()}");
        var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(RepositoryPaths.TinyQwen3Fixture, "tokenizer.json"));
        var stopwatch = Stopwatch.StartNew();
        TokenVocabulary vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        double vocabularyMs = stopwatch.Elapsed.TotalMilliseconds;
        stopwatch.Restart();
        TokenVocabulary toolVocabulary = TokenVocabulary.ForToolCalls(tokenizer);
        double toolVocabularyMs = stopwatch.Elapsed.TotalMilliseconds;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"vocabulary (once per tokenizer): {vocabulary.Size} ids, trie {vocabulary.Trie.NodeCount} nodes, {vocabulary.ContextTrie.NodeTokens.Length} tokens not plain (their trie {vocabulary.ContextTrie.NodeCount} nodes), longest plain token {vocabulary.MaxPlainChars} chars; built in {vocabularyMs:F0} ms (tool-call vocabulary {toolVocabularyMs:F0} ms)"));
        output.WriteLine("Compile and FillMask times are the thread's CPU time (time the thread was not scheduled is left out); the last two columns are wall-clock.");
        output.WriteLine($"{"schema",-13} {"compile ms",10} {"caches",-6} {"steps",6} {"p50 µs",8} {"p90 µs",8} {"p99 µs",8} {"max µs",8} {"wall p50",8} {"wall p99",8}");

        // One walk of every schema first, so the JIT's first compilations are not counted as first visits.
        foreach ((string name, string schema) in schemas)
        {
            Walk(Compiler(name, schema, name == ToolChoiceName ? toolVocabulary : vocabulary)(), seed - 1, null);
        }

        foreach ((string name, string schema) in schemas)
        {
            TokenVocabulary v = name == ToolChoiceName ? toolVocabulary : vocabulary;
            Func<CompiledGrammar> compile = Compiler(name, schema, v);
            var compileTimes = new List<double>();
            for (int run = 0; run < compileRuns + 1; run++)
            {
                double start = ThreadCpuMicroseconds();
                compile();
                if (run > 0)
                {
                    // The first run also pays the JIT; it is not counted.
                    compileTimes.Add((ThreadCpuMicroseconds() - start) / 1000);
                }
            }

            compileTimes.Sort();
            double compileMs = compileTimes[compileTimes.Count / 2];

            var cold = new List<double>();
            var coldWall = new List<double>();
            for (int walk = 0; walk < walks; walk++)
            {
                Walk(compile(), seed + walk, cold, coldWall);
            }

            CompiledGrammar warm = compile();
            for (int walk = 0; walk < walks; walk++)
            {
                Walk(warm, seed + walk, null);
            }

            var warmTimes = new List<double>();
            var warmWall = new List<double>();
            for (int walk = 0; walk < walks; walk++)
            {
                Walk(warm, seed + walks + walk, warmTimes, warmWall);
            }

            Print(output, name, compileMs, "cold", cold, coldWall);
            Print(output, "", double.NaN, "warm", warmTimes, warmWall);
        }

        return 0;
    }

    private static void Print(TextWriter output, string name, double compileMs, string caches, List<double> times, List<double> wallTimes)
    {
        times.Sort();
        wallTimes.Sort();
        string compile = double.IsNaN(compileMs) ? "" : compileMs.ToString("F2", CultureInfo.InvariantCulture);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-13} {compile,10} {caches,-6} {times.Count,6} {Percentile(times, 0.5),8:F1} {Percentile(times, 0.9),8:F1} {Percentile(times, 0.99),8:F1} {times[^1],8:F1} {Percentile(wallTimes, 0.5),8:F1} {Percentile(wallTimes, 0.99),8:F1}"));
    }

    private static Func<CompiledGrammar> Compiler(string name, string schema, TokenVocabulary vocabulary)
    {
        if (name == ToolChoiceName)
        {
            var tools = JsonDocument.Parse(schema).RootElement.EnumerateArray()
                .Select(tool => (tool.GetProperty("name").GetString()!, tool.GetProperty("parameters").Clone()))
                .ToArray();
            return () => CompiledGrammar.FromAutomaton(
                JsonSchemaCompiler.CompileToolCalls(tools, parallel: true, TokenVocabulary.ToolCallOpenByte, TokenVocabulary.ToolCallCloseByte, GrammarLimits.Default),
                vocabulary);
        }

        if (schema.Length == 0)
        {
            return () => CompiledGrammar.AnyJsonObject(vocabulary);
        }

        JsonElement root = JsonDocument.Parse(schema).RootElement;
        return () => CompiledGrammar.FromJsonSchema(root, vocabulary);
    }

    /// <summary>An object of 10 properties of every kind, two of them objects of 10 properties each: 30 in all.</summary>
    private static string NestedSchema()
    {
        static string Properties(string prefix, string? nestedA, string? nestedB)
        {
            var properties = new List<string>
            {
                $$"""
                "{{prefix}}_name":{"type":"string","maxLength":32}
                """,
                $$"""
                "{{prefix}}_count":{"type":"integer","minimum":0,"maximum":10000}
                """,
                $$"""
                "{{prefix}}_ratio":{"type":"number"}
                """,
                $$"""
                "{{prefix}}_enabled":{"type":"boolean"}
                """,
                $$"""
                "{{prefix}}_kind":{"enum":["alpha","beta","gamma","delta"]}
                """,
                $$"""
                "{{prefix}}_date":{"type":"string","format":"date"}
                """,
                $$"""
                "{{prefix}}_tags":{"type":"array","items":{"type":"string","maxLength":16},"maxItems":4}
                """,
                $$"""
                "{{prefix}}_note":{"type":"string"}
                """,
            };
            properties.Add(nestedA ?? $$"""
                "{{prefix}}_id":{"type":"string","format":"uuid"}
                """);
            properties.Add(nestedB ?? $$"""
                "{{prefix}}_score":{"type":"integer","minimum":-100,"maximum":100}
                """);
            string names = string.Join(",", properties.Select(p => p[..(p.IndexOf(':', StringComparison.Ordinal))]));
            return $$"""{"type":"object","properties":{{{string.Join(",", properties)}}},"required":[{{names}}]}""";
        }

        return Properties("top", "\"first\":" + Properties("first", null, null), "\"second\":" + Properties("second", null, null));
    }

    /// <summary>CPU time of the calling thread: on a shared machine, time the thread was not running is not the mask's.</summary>
    private static double ThreadCpuMicroseconds()
    {
        const int ClockThreadCpuTime = 3;
        return ClockGetTime(ClockThreadCpuTime, out TimeSpec t) == 0 ? (t.Seconds * 1e6) + (t.Nanoseconds / 1e3) : throw new InvalidOperationException("clock_gettime failed.");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>Random tokens from the mask; after 40 steps, the walk prefers ending, closing characters, then single bytes.</summary>
    private static void Walk(CompiledGrammar grammar, int seed, List<double>? times, List<double>? wallTimes = null)
    {
        var mask = new ulong[grammar.Vocabulary.MaskWords];
        var allowed = new List<int>();
        var random = new Random(seed);
        TokenMatcher matcher = grammar.CreateMatcher();
        for (int step = 0; !matcher.IsTerminated && step < 1000; step++)
        {
            long wallStart = Stopwatch.GetTimestamp();
            double cpuStart = ThreadCpuMicroseconds();
            matcher.FillMask(mask);
            times?.Add(ThreadCpuMicroseconds() - cpuStart);
            wallTimes?.Add(Stopwatch.GetElapsedTime(wallStart).TotalMicroseconds);
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

    private static int Pick(TokenVocabulary vocabulary, List<int> allowed, Random random, bool finish)
    {
        if (finish)
        {
            int end = allowed.FindIndex(vocabulary.IsEndToken);
            if (end >= 0)
            {
                return allowed[end];
            }

            foreach (Predicate<int> preferred in new Predicate<int>[] { id => vocabulary.TokenBytes(id) is [(byte)'"' or (byte)']' or (byte)'}' or TokenVocabulary.ToolCallCloseByte, ..], id => vocabulary.TokenBytes(id).Length == 1 })
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
