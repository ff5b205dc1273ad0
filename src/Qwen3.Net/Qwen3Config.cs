namespace Qwen3.Net;

/// <summary>
/// The hyperparameters of a Qwen3 dense model, read field for field from the model folder's <c>config.json</c>
/// (and the end-of-sequence ids from <c>generation_config.json</c>).
/// </summary>
public sealed record Qwen3Config
{
    /// <summary>The architecture named in <c>architectures</c>; always <c>Qwen3ForCausalLM</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary><c>hidden_size</c>: width of the residual stream.</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>intermediate_size</c>: width of the SwiGLU MLP.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>num_hidden_layers</c>: number of decoder layers.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>: query heads per layer.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary><c>num_key_value_heads</c>: key/value heads per layer (grouped-query attention).</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary><c>head_dim</c>: width of one attention head. Read from the file, never derived (0.6B has 16 × 128 ≠ 1024).</summary>
    public required int HeadDim { get; init; }

    /// <summary><c>vocab_size</c>: rows of the embedding and of the output head.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>tie_word_embeddings</c>: when true the output head reuses <c>model.embed_tokens.weight</c>.</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary><c>rope_theta</c>: base of the rotary position frequencies.</summary>
    public required double RopeTheta { get; init; }

    /// <summary><c>rms_norm_eps</c>: epsilon of every RMSNorm.</summary>
    public required double RmsNormEps { get; init; }

    /// <summary><c>max_position_embeddings</c>: the longest context the model supports.</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary><c>rope_scaling</c>: null for plain RoPE, otherwise the YaRN parameters.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>torch_dtype</c> as written in the file (e.g. <c>bfloat16</c>); informational, each tensor carries its own type.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>End-of-sequence token ids: <c>eos_token_id</c> of <c>generation_config.json</c> (a list), else of <c>config.json</c>.</summary>
    public required IReadOnlyList<int> EosTokenIds { get; init; }

    /// <summary>Query heads that share one key/value head.</summary>
    public int QueryGroupSize => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>
    /// Reads <c>config.json</c> (and <c>generation_config.json</c> when present) from a model folder.
    /// </summary>
    /// <param name="modelFolder">A Hugging Face Qwen3 model folder.</param>
    /// <exception cref="ModelLoadException">A file is missing or malformed, or a field is missing or invalid; the message names the file and field.</exception>
    /// <exception cref="NotSupportedException">The architecture is not a Qwen3 dense model (for example Qwen3MoeForCausalLM or Qwen2ForCausalLM).</exception>
    public static Qwen3Config Load(string modelFolder) => Qwen3ConfigReader.Read(modelFolder);
}

/// <summary>
/// YaRN context extension, as in <c>"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}</c>.
/// </summary>
public sealed record RopeScaling
{
    /// <summary><c>rope_type</c> (or the older <c>type</c>); only <c>yarn</c> is supported.</summary>
    public required string RopeType { get; init; }

    /// <summary><c>factor</c>: how much the original context is stretched.</summary>
    public required double Factor { get; init; }

    /// <summary><c>original_max_position_embeddings</c>: the context length the model was trained with.</summary>
    public required int OriginalMaxPositionEmbeddings { get; init; }

    /// <summary><c>beta_fast</c> (default 32).</summary>
    public double BetaFast { get; init; } = 32;

    /// <summary><c>beta_slow</c> (default 1).</summary>
    public double BetaSlow { get; init; } = 1;

    /// <summary><c>attention_factor</c>; when null, 0.1·ln(factor) + 1 as in transformers.</summary>
    public double? AttentionFactor { get; init; }

    /// <summary><c>truncate</c> (default true): whether the correction range is rounded to whole dimensions, as in transformers.</summary>
    public bool Truncate { get; init; } = true;
}
