using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Model;

/// <summary>
/// The weights of Qwen3ForCausalLM, bound by their checkpoint names and checked against the config.
/// Matrices stay in the memory map (and, when asked for, are also kept packed: <see cref="PackedPanels"/>); the small
/// norm vectors are widened to float32 once.
/// </summary>
internal sealed record Qwen3Weights
{
    public required WeightMatrix EmbedTokens { get; init; } // model.embed_tokens.weight (vocab, hidden)
    public required Qwen3LayerWeights[] Layers { get; init; }
    public required float[] Norm { get; init; }             // model.norm.weight (hidden)
    public required WeightMatrix? LmHead { get; init; }     // lm_head.weight (vocab, hidden), or embed_tokens when tied; null for a headless embedding checkpoint

    /// <summary>
    /// Binds the checkpoint's tensors, named as transformers' Qwen3ForCausalLM saves them (<c>model.layers.0...</c>) or
    /// as its inner Qwen3Model does (<c>layers.0...</c>, how Qwen3-Embedding checkpoints are saved).
    /// </summary>
    /// <param name="store">The checkpoint's tensors.</param>
    /// <param name="c">The config the shapes are checked against.</param>
    /// <param name="requireHead">Whether the output head must exist; an embedding model never computes logits, so its checkpoint may lack <c>lm_head</c>.</param>
    public static Qwen3Weights Bind(TensorStore store, Qwen3Config c, bool requireHead = true)
    {
        var expected = new HashSet<string>();
        WeightMatrix Matrix(string name, int rows, int columns)
        {
            expected.Add(name);
            return WeightMatrix.From(store.Get(name, rows, columns));
        }

        float[] Vector(string name, int length)
        {
            expected.Add(name);
            var view = store.Get(name, length);
            var values = new float[length];
            WeightMatrix.From(view).ReadRow(0, values);
            return values;
        }

        string prefix = store.Contains("model.embed_tokens.weight") ? "model."
            : store.Contains("embed_tokens.weight") ? string.Empty
            : throw new ModelLoadException(
                $"The checkpoint in '{store.Folder}' has neither 'model.embed_tokens.weight' (Qwen3ForCausalLM layout) nor 'embed_tokens.weight' (Qwen3Model layout, as Qwen3-Embedding saves it).",
                store.Folder, "model.embed_tokens.weight");
        int q = c.NumAttentionHeads * c.HeadDim;
        int kv = c.NumKeyValueHeads * c.HeadDim;
        var embed = Matrix(prefix + "embed_tokens.weight", c.VocabSize, c.HiddenSize);
        var layers = new Qwen3LayerWeights[c.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            string p = $"{prefix}layers.{i}.";
            layers[i] = new Qwen3LayerWeights
            {
                InputLayernorm = Vector(p + "input_layernorm.weight", c.HiddenSize),
                QProj = Matrix(p + "self_attn.q_proj.weight", q, c.HiddenSize),
                KProj = Matrix(p + "self_attn.k_proj.weight", kv, c.HiddenSize),
                VProj = Matrix(p + "self_attn.v_proj.weight", kv, c.HiddenSize),
                QNorm = Vector(p + "self_attn.q_norm.weight", c.HeadDim),
                KNorm = Vector(p + "self_attn.k_norm.weight", c.HeadDim),
                OProj = Matrix(p + "self_attn.o_proj.weight", c.HiddenSize, q),
                PostAttentionLayernorm = Vector(p + "post_attention_layernorm.weight", c.HiddenSize),
                GateProj = Matrix(p + "mlp.gate_proj.weight", c.IntermediateSize, c.HiddenSize),
                UpProj = Matrix(p + "mlp.up_proj.weight", c.IntermediateSize, c.HiddenSize),
                DownProj = Matrix(p + "mlp.down_proj.weight", c.HiddenSize, c.IntermediateSize),
            };
        }

        var norm = Vector(prefix + "norm.weight", c.HiddenSize);
        const string lmHeadName = "lm_head.weight";
        WeightMatrix? lmHead;
        if (c.TieWordEmbeddings)
        {
            if (store.Contains(lmHeadName))
            {
                throw new ModelLoadException(
                    $"config.json says tie_word_embeddings is true, but the checkpoint has its own '{lmHeadName}'; the model would silently ignore it.",
                    Path.Combine(store.Folder, "config.json"), lmHeadName);
            }

            lmHead = embed;
        }
        else
        {
            lmHead = requireHead || store.Contains(lmHeadName) ? Matrix(lmHeadName, c.VocabSize, c.HiddenSize) : null;
        }

        foreach (string name in store.TensorNames)
        {
            if (!expected.Contains(name))
            {
                throw new ModelLoadException(
                    $"Unexpected tensor '{store.FileNameOf(name)}' in {store.FileOf(name)}: a Qwen3 model with {c.NumHiddenLayers} layers and no biases has no such weight, and ignoring it would give wrong results.",
                    store.FileOf(name), store.FileNameOf(name));
            }
        }

        return new Qwen3Weights { EmbedTokens = embed, Layers = layers, Norm = norm, LmHead = lmHead };
    }
}

/// <summary>The weights of one decoder layer (shapes with q = heads·headDim, kv = kvHeads·headDim).</summary>
internal sealed record Qwen3LayerWeights
{
    public required float[] InputLayernorm { get; init; }         // (hidden)
    public required WeightMatrix QProj { get; init; }             // (q, hidden)
    public required WeightMatrix KProj { get; init; }             // (kv, hidden)
    public required WeightMatrix VProj { get; init; }             // (kv, hidden)
    public required float[] QNorm { get; init; }                  // (headDim)
    public required float[] KNorm { get; init; }                  // (headDim)
    public required WeightMatrix OProj { get; init; }             // (hidden, q)
    public required float[] PostAttentionLayernorm { get; init; } // (hidden)
    public required WeightMatrix GateProj { get; init; }          // (intermediate, hidden)
    public required WeightMatrix UpProj { get; init; }            // (intermediate, hidden)
    public required WeightMatrix DownProj { get; init; }          // (hidden, intermediate)
}
