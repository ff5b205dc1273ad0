using System.Diagnostics;
using System.Security.Cryptography;
using Qwen3.Net.Benchmarks.Gguf;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Writes a Hugging Face Qwen3 folder with synthetic weights: the official config, the real tokenizer, BF16
/// safetensors sharded as <c>save_pretrained</c> shards, and optionally the same weights as a BF16 GGUF for llama.cpp
/// and as Q8_0, Q4_K_M, Q5_0, Q3_K_M and Q2_K GGUFs by the library's quantizer.
/// </summary>
public sealed class ModelGenerator(ModelShape shape, ulong seed, string tokenizerFolder)
{
    /// <summary>Shard size limit; the real 1.7B checkpoint likewise comes as two shards.</summary>
    public const long MaxShardBytes = 2_000_000_000;

    public const string GgufFileName = "model-bf16.gguf";

    /// <summary>The quantized GGUFs written beside <see cref="GgufFileName"/>, by file name.</summary>
    public static readonly IReadOnlyList<(string FileName, QuantizationType Type)> QuantizedGgufFiles =
        [("model-q8_0.gguf", QuantizationType.Q8_0), ("model-q4_k_m.gguf", QuantizationType.Q4_K_M), ("model-q5_0.gguf", QuantizationType.Q5_0),
         ("model-q3_k_m.gguf", QuantizationType.Q3_K_M), ("model-q2_k.gguf", QuantizationType.Q2_K)];

    private static readonly string[] CopiedFiles = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

    public void Generate(string outputFolder, bool writeGguf, TextWriter log)
    {
        Directory.CreateDirectory(outputFolder);
        File.WriteAllText(Path.Combine(outputFolder, "config.json"), shape.ToConfigJson());
        foreach (string name in CopiedFiles)
        {
            File.Copy(Path.Combine(tokenizerFolder, name), Path.Combine(outputFolder, name), overwrite: true);
        }

        var weights = new SyntheticWeights(seed);
        var data = new ChunkedTensorWriter(weights);
        var shards = PlanShards(CheckpointTensor.EnumerateAll(shape));
        var clock = Stopwatch.StartNew();
        if (shards.Count == 1)
        {
            // save_pretrained writes an unsharded checkpoint, without index, when it fits in one shard.
            SafetensorsWriter.Write(Path.Combine(outputFolder, "model.safetensors"), shards[0], data);
        }
        else
        {
            var weightMap = new List<(string, string)>();
            for (int i = 0; i < shards.Count; i++)
            {
                string fileName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafetensorsWriter.Write(Path.Combine(outputFolder, fileName), shards[i], data);
                weightMap.AddRange(shards[i].Select(t => (t.HfName, fileName)));
                log.WriteLine($"  {fileName}: {shards[i].Count} tensors, {clock.Elapsed.TotalSeconds:F1} s");
            }
            long totalSize = shards.Sum(s => s.Sum(ChunkedTensorWriter.Bf16ByteCount));
            SafetensorsWriter.WriteIndex(Path.Combine(outputFolder, "model.safetensors.index.json"), totalSize, weightMap);
        }
        log.WriteLine($"safetensors written in {clock.Elapsed.TotalSeconds:F1} s");

        if (writeGguf)
        {
            clock.Restart();
            Qwen3GgufExporter.Export(Path.Combine(outputFolder, GgufFileName), shape, weights, tokenizerFolder,
                $"Qwen3-{shape.Name.ToUpperInvariant()} synthetic seed {seed}");
            log.WriteLine($"{GgufFileName} written in {clock.Elapsed.TotalSeconds:F1} s");
            foreach ((string fileName, QuantizationType type) in QuantizedGgufFiles)
            {
                clock.Restart();
                Qwen3Quantizer.QuantizeAsync(outputFolder, Path.Combine(outputFolder, fileName), type).GetAwaiter().GetResult();
                log.WriteLine($"{fileName} written in {clock.Elapsed.TotalSeconds:F1} s");
            }
        }
    }

    /// <summary>Greedy split in module order: a new shard starts when the next tensor would pass the limit.</summary>
    public static List<List<CheckpointTensor>> PlanShards(IEnumerable<CheckpointTensor> tensors)
    {
        var shards = new List<List<CheckpointTensor>> { new() };
        long current = 0;
        foreach (var tensor in tensors)
        {
            long size = ChunkedTensorWriter.Bf16ByteCount(tensor);
            if (current + size > MaxShardBytes && shards[^1].Count > 0)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(tensor);
            current += size;
        }
        return shards;
    }

    /// <summary>SHA-256 of every weight file, so two runs with one seed can be compared for byte identity.</summary>
    public static IEnumerable<(string File, string Sha256)> HashWeightFiles(string folder) =>
        Directory.EnumerateFiles(folder)
            .Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".gguf", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f =>
            {
                using var stream = File.OpenRead(f);
                return (Path.GetFileName(f), Convert.ToHexStringLower(SHA256.HashData(stream)));
            });
}
