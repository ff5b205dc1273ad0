using System.Globalization;
using System.Text.Json;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// The hyperparameters of a Qwen3 dense checkpoint that decide tensor shapes, file metadata and roofline figures.
/// Kept separate from the library's own config type so the benchmarks keep working while that API moves.
/// </summary>
public sealed record ModelShape(
    string Name,
    int HiddenSize,
    int NumLayers,
    int NumHeads,
    int NumKvHeads,
    int HeadDim,
    int IntermediateSize,
    int VocabSize,
    bool TieWordEmbeddings,
    double RopeTheta,
    double RmsNormEps,
    int MaxPositionEmbeddings)
{
    // Values of the official Qwen/Qwen3-*B config.json files; only the weights are synthetic.
    public static readonly ModelShape Qwen3_0_6B = new("0.6b", 1024, 28, 16, 8, 128, 3072, 151936, true, 1_000_000, 1e-6, 40960);
    public static readonly ModelShape Qwen3_1_7B = new("1.7b", 2048, 28, 16, 8, 128, 6144, 151936, true, 1_000_000, 1e-6, 40960);
    public static readonly ModelShape Qwen3_4B = new("4b", 2560, 36, 32, 8, 128, 9728, 151936, true, 1_000_000, 1e-6, 40960);

    public static ModelShape FromSizeName(string size) => size.ToLowerInvariant() switch
    {
        "0.6b" => Qwen3_0_6B,
        "1.7b" => Qwen3_1_7B,
        "4b" => Qwen3_4B,
        _ => throw new ArgumentException($"Unknown size '{size}': expected 0.6b, 1.7b or 4b."),
    };

    public static ModelShape FromConfigJson(string modelFolder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(modelFolder, "config.json")));
        var root = doc.RootElement;
        return new ModelShape(
            Path.GetFileName(Path.TrimEndingDirectorySeparator(modelFolder)),
            root.GetProperty("hidden_size").GetInt32(),
            root.GetProperty("num_hidden_layers").GetInt32(),
            root.GetProperty("num_attention_heads").GetInt32(),
            root.GetProperty("num_key_value_heads").GetInt32(),
            root.GetProperty("head_dim").GetInt32(),
            root.GetProperty("intermediate_size").GetInt32(),
            root.GetProperty("vocab_size").GetInt32(),
            root.TryGetProperty("tie_word_embeddings", out var tie) && tie.GetBoolean(),
            root.GetProperty("rope_theta").GetDouble(),
            root.GetProperty("rms_norm_eps").GetDouble(),
            root.GetProperty("max_position_embeddings").GetInt32());
    }

    /// <summary>Weights of one decoder layer's seven projection matrices.</summary>
    public long LayerMatrixParameters =>
        (long)HiddenSize * NumHeads * HeadDim * 2          // q_proj, o_proj
        + (long)HiddenSize * NumKvHeads * HeadDim * 2      // k_proj, v_proj
        + (long)HiddenSize * IntermediateSize * 3;         // gate, up, down

    public long EmbeddingParameters => (long)VocabSize * HiddenSize;

    /// <summary>
    /// Matrix weights streamed from memory to produce one token's logits: every layer plus the output head
    /// (the embedding itself when tied; the input-embedding row lookup is negligible).
    /// </summary>
    public long WeightsReadPerToken => NumLayers * LayerMatrixParameters + EmbeddingParameters;

    /// <summary>The config.json of the official checkpoint, byte for byte in its formatting style.</summary>
    public string ToConfigJson()
    {
        var inv = CultureInfo.InvariantCulture;
        return $$"""
            {
              "architectures": [
                "Qwen3ForCausalLM"
              ],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "head_dim": {{HeadDim}},
              "hidden_act": "silu",
              "hidden_size": {{HiddenSize}},
              "initializer_range": 0.02,
              "intermediate_size": {{IntermediateSize}},
              "max_position_embeddings": {{MaxPositionEmbeddings}},
              "max_window_layers": {{NumLayers}},
              "model_type": "qwen3",
              "num_attention_heads": {{NumHeads}},
              "num_hidden_layers": {{NumLayers}},
              "num_key_value_heads": {{NumKvHeads}},
              "rms_norm_eps": {{RmsNormEps.ToString("0e-00", inv)}},
              "rope_scaling": null,
              "rope_theta": {{RopeTheta.ToString("0", inv)}},
              "sliding_window": null,
              "tie_word_embeddings": {{(TieWordEmbeddings ? "true" : "false")}},
              "torch_dtype": "bfloat16",
              "transformers_version": "4.51.0",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": {{VocabSize}}
            }

            """;
    }
}
