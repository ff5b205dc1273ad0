namespace Qwen3.Net.Benchmarks.Checkpoints;

public enum TensorRole
{
    Embedding,
    Projection,
    Norm,
}

/// <summary>
/// One weight of a Qwen3 checkpoint under both of its names: the Hugging Face one and the llama.cpp GGUF one.
/// <paramref name="Shape"/> is row-major, outermost dimension first, as in safetensors.
/// </summary>
public sealed record CheckpointTensor(string HfName, string GgufName, long[] Shape, TensorRole Role)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Inputs summed by each output of a projection: the innermost dimension.</summary>
    public long FanIn => Shape[^1];

    /// <summary>
    /// All tensors of a checkpoint in the order the Hugging Face model registers its modules,
    /// which is also the order its sharded checkpoints are split in.
    /// </summary>
    public static IReadOnlyList<CheckpointTensor> EnumerateAll(ModelShape shape)
    {
        long hidden = shape.HiddenSize;
        long qDim = (long)shape.NumHeads * shape.HeadDim;
        long kvDim = (long)shape.NumKvHeads * shape.HeadDim;
        long ffn = shape.IntermediateSize;

        var list = new List<CheckpointTensor>
        {
            new("model.embed_tokens.weight", "token_embd.weight", [shape.VocabSize, hidden], TensorRole.Embedding),
        };
        for (int i = 0; i < shape.NumLayers; i++)
        {
            string hf = $"model.layers.{i}.";
            string gg = $"blk.{i}.";
            list.Add(new(hf + "self_attn.q_proj.weight", gg + "attn_q.weight", [qDim, hidden], TensorRole.Projection));
            list.Add(new(hf + "self_attn.k_proj.weight", gg + "attn_k.weight", [kvDim, hidden], TensorRole.Projection));
            list.Add(new(hf + "self_attn.v_proj.weight", gg + "attn_v.weight", [kvDim, hidden], TensorRole.Projection));
            list.Add(new(hf + "self_attn.o_proj.weight", gg + "attn_output.weight", [hidden, qDim], TensorRole.Projection));
            list.Add(new(hf + "self_attn.q_norm.weight", gg + "attn_q_norm.weight", [shape.HeadDim], TensorRole.Norm));
            list.Add(new(hf + "self_attn.k_norm.weight", gg + "attn_k_norm.weight", [shape.HeadDim], TensorRole.Norm));
            list.Add(new(hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", [ffn, hidden], TensorRole.Projection));
            list.Add(new(hf + "mlp.up_proj.weight", gg + "ffn_up.weight", [ffn, hidden], TensorRole.Projection));
            list.Add(new(hf + "mlp.down_proj.weight", gg + "ffn_down.weight", [hidden, ffn], TensorRole.Projection));
            list.Add(new(hf + "input_layernorm.weight", gg + "attn_norm.weight", [hidden], TensorRole.Norm));
            list.Add(new(hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", [hidden], TensorRole.Norm));
        }
        list.Add(new("model.norm.weight", "output_norm.weight", [hidden], TensorRole.Norm));
        if (!shape.TieWordEmbeddings)
        {
            list.Add(new("lm_head.weight", "output.weight", [shape.VocabSize, hidden], TensorRole.Projection));
        }
        return list;
    }
}
