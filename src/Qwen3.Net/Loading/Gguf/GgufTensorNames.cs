using System.Globalization;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// llama.cpp's names for the Qwen3 tensors (<c>token_embd.weight</c>, <c>blk.N.attn_q.weight</c>, ...) and the Hugging Face
/// checkpoint names the weights are bound by, in both directions.
/// </summary>
internal static class GgufTensorNames
{
    const string LayerPrefix = "blk.";
    const string CheckpointLayerPrefix = "model.layers.";

    static readonly (string Gguf, string Checkpoint)[] Global =
    [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ];

    static readonly (string Gguf, string Checkpoint)[] PerLayer =
    [
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ];

    /// <summary>The checkpoint name of a GGUF tensor name; the name itself when it is not a Qwen3 tensor.</summary>
    public static string ToCheckpoint(string gguf) => Translate(gguf, LayerPrefix, CheckpointLayerPrefix, fromGguf: true);

    /// <summary>The GGUF name of a checkpoint tensor name; the name itself when it is not a Qwen3 tensor.</summary>
    public static string ToGguf(string checkpoint) => Translate(checkpoint, CheckpointLayerPrefix, LayerPrefix, fromGguf: false);

    /// <summary>The layer number of a GGUF tensor name (<c>blk.N.…</c>); null for the global tensors.</summary>
    public static int? LayerOf(string gguf)
    {
        if (!gguf.StartsWith(LayerPrefix, StringComparison.Ordinal))
            return null;
        int end = gguf.IndexOf('.', LayerPrefix.Length);
        return end > 0 && int.TryParse(gguf.AsSpan(LayerPrefix.Length, end - LayerPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)
            ? layer
            : null;
    }

    static string Translate(string name, string layerPrefix, string otherLayerPrefix, bool fromGguf)
    {
        // The suffix (.weight, .bias) is kept, so an unexpected bias still gets a recognizable name.
        int dot = name.LastIndexOf('.');
        if (dot <= 0)
            return name;
        string stem = name[..dot], suffix = name[dot..];

        if (stem.StartsWith(layerPrefix, StringComparison.Ordinal))
        {
            int layerEnd = stem.IndexOf('.', layerPrefix.Length);
            if (layerEnd < 0 || !int.TryParse(stem.AsSpan(layerPrefix.Length, layerEnd - layerPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
                return name;
            string rest = stem[(layerEnd + 1)..];
            foreach ((string g, string c) in PerLayer)
            {
                if (rest == (fromGguf ? g : c))
                    return string.Create(CultureInfo.InvariantCulture, $"{otherLayerPrefix}{layer}.{(fromGguf ? c : g)}{suffix}");
            }

            return name;
        }

        foreach ((string g, string c) in Global)
        {
            if (stem == (fromGguf ? g : c))
                return (fromGguf ? c : g) + suffix;
        }

        return name;
    }
}
