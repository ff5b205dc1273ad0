using System.Runtime.InteropServices;
using System.Text.Json;
using Qwen3.Net.Benchmarks.Engines;

namespace Qwen3.Net.Benchmarks.Gguf;

/// <summary>
/// Proves a GGUF written by <see cref="Qwen3GgufExporter"/> means what the safetensors meant: llama.cpp runs the
/// tiny-qwen3 fixture converted to GGUF, and its last-prompt-token logits and greedy continuations are compared with
/// the fixture's float64 reference. A transposed matrix, a wrong head_dim or a swapped norm would fail by whole units.
/// </summary>
public static class GoldenLogitsCheck
{
    /// <param name="maxAbsDifference">
    /// 1e-3 (the fixture's own tolerance) for an F32 GGUF. A BF16 GGUF gets more: llama.cpp rounds activations to
    /// BF16 before BF16 matrix products. Layout errors give differences the size of the logits (std ~3.6).
    /// </param>
    public static bool Run(string ggufPath, string goldenFolder, float maxAbsDifference, TextWriter log)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(goldenFolder, "golden.json")));
        int vocab = doc.RootElement.GetProperty("vocab_size").GetInt32();
        using var engine = new LlamaCppEngine(ggufPath, threads: Environment.ProcessorCount, contextSize: 2048, f32KvCache: true);

        bool ok = true;
        foreach (var testCase in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string name = testCase.GetProperty("name").GetString()!;
            int[] prompt = testCase.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int[] positions = testCase.GetProperty("logit_positions").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int row = Array.IndexOf(positions, prompt.Length - 1);
            if (row < 0)
            {
                continue;
            }
            float[] golden = ReadRow(Path.Combine(goldenFolder, testCase.GetProperty("logits_file").GetString()!), row, vocab);

            engine.Reset();
            var logits = engine.Evaluate(prompt);
            float maxDiff = 0;
            for (int i = 0; i < vocab; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(logits[i] - golden[i]));
            }
            bool topMatches = Greedy.ArgMax(logits) == Greedy.ArgMax(golden);

            int[] expected = testCase.GetProperty("greedy_new_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int agreed = 0;
            int next = Greedy.ArgMax(logits);
            while (agreed < expected.Length && next == expected[agreed])
            {
                agreed++;
                if (agreed < expected.Length)
                {
                    next = Greedy.ArgMax(engine.Evaluate([next]));
                }
            }

            bool pass = maxDiff <= maxAbsDifference && topMatches;
            ok &= pass;
            log.WriteLine($"{(pass ? "PASS" : "FAIL")} {name,-14} prompt {prompt.Length,5} tokens  max|logit diff| {maxDiff:F5}  " +
                $"top-1 {(topMatches ? "same" : "DIFFERENT")}  greedy prefix agreeing {agreed}/{expected.Length}");
        }
        return ok;
    }

    private static float[] ReadRow(string path, int row, int vocab)
    {
        var bytes = new byte[vocab * sizeof(float)];
        using var file = File.OpenRead(path);
        file.Seek((long)row * bytes.Length, SeekOrigin.Begin);
        file.ReadExactly(bytes);
        return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }
}
