using System.Text.Json.Nodes;

namespace Qwen3.Net.ScriptedModel;

/// <summary>
/// Writes a tiny Qwen3 checkpoint (the real architecture and tokenizer) whose output after a chat prompt follows
/// <see cref="Script"/>: see README.md in this project for how the weights do it.
/// </summary>
public static class ScriptedModelGenerator
{
    private const int Hidden = 96;
    private const int Layers = 2;
    private const int Heads = 4;
    private const int KvHeads = 2;
    private const int HeadDim = 32;
    private const int Intermediate = 256;
    private const int VocabSize = 151936;
    private const double RopeTheta = 1_000_000;

    // Residual-stream dimensions. Every embedding is Bias plus ±1 in one other dimension, so all have norm sqrt(2).
    private const int Bias = 0;
    private const int ThinkStartMarker = 1;
    private const int ToolCallStartMarker = 2;
    private const int ToolResponseMarker = 3;
    private const int FirstFeature = 4;
    private const int Filler = FirstFeature + 4;
    private const int FirstContent = Filler + 1;

    // lm_head row weight of a step's predecessor, and the share of it that the step's feature key may carry: the key
    // decides between steps from one token (lead 2·KeyWeight/3 with three features) and stays below a plain step
    // (lead 1 - KeyWeight). The final norm scales the residual (norm sqrt(6)) by sqrt(96/6) = 4: both leads are 80 logits.
    private const float OutputScale = 50;
    private const float KeyWeight = 0.6f;

    // Attention scores stay at or below ~40: the engine's softmax (TensorPrimitives.SoftMax) does not subtract the
    // maximum, so exp(score) must not overflow float even summed over a full context.

    // Layer 0's previous-token head: q·k over RoPE pair i < 15 is weighted PreviousTokenDecay^i and peaks at distance
    // 1; the slowest pair (nearly constant over the context) subtracts as much, so that peak scores 0. With q_norm =
    // k_norm = PreviousTokenNorm distance 1 leads every other distance up to 40960 by 31 or more.
    private const double PreviousTokenDecay = 0.75;
    private const float PreviousTokenNorm = 9;

    // Layer 1's marker heads: a marker key scores ~40 against 0 for any other token, so attention lands on the markers whenever there is one.
    private const float MarkerNorm = 2.66f;
    private const float MarkerKey = 16;

    /// <summary>Writes the model folder: config, tokenizer files copied from <paramref name="tokenizerFolder"/>, and weights.</summary>
    /// <param name="outputFolder">The folder to write; created if missing, files in it are overwritten.</param>
    /// <param name="tokenizerFolder">A folder with the Qwen3 <c>tokenizer.json</c>, <c>tokenizer_config.json</c> and <c>generation_config.json</c>.</param>
    /// <returns>The plan of token ids the model follows.</returns>
    public static ScriptPlan Write(string outputFolder, string tokenizerFolder)
    {
        ArgumentNullException.ThrowIfNull(outputFolder);
        ArgumentNullException.ThrowIfNull(tokenizerFolder);
        Directory.CreateDirectory(outputFolder);
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(outputFolder, file), overwrite: true);
        }

        var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(outputFolder, "tokenizer.json"));
        var plan = ScriptPlan.Create(tokenizer);
        File.WriteAllText(Path.Combine(outputFolder, "config.json"), Config().ToJsonString(new() { WriteIndented = true }));
        Weights(plan, tokenizer).WriteTo(Path.Combine(outputFolder, "model.safetensors"));
        return plan;
    }

    /// <summary>The repository's <c>tests/fixtures/tiny-qwen3</c> folder, found above <paramref name="start"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">No folder above has it.</exception>
    public static string FindTokenizerFolder(string start)
    {
        for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "tiny-qwen3");
            if (File.Exists(Path.Combine(candidate, "tokenizer.json")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"No tests/fixtures/tiny-qwen3 folder above {start}.");
    }

    private static JsonObject Config() => new()
    {
        ["architectures"] = new JsonArray("Qwen3ForCausalLM"),
        ["attention_bias"] = false,
        ["attention_dropout"] = 0.0,
        ["bos_token_id"] = 151643,
        ["eos_token_id"] = 151645,
        ["head_dim"] = HeadDim,
        ["hidden_act"] = "silu",
        ["hidden_size"] = Hidden,
        ["initializer_range"] = 0.02,
        ["intermediate_size"] = Intermediate,
        ["max_position_embeddings"] = 40960,
        ["max_window_layers"] = 28,
        ["model_type"] = "qwen3",
        ["num_attention_heads"] = Heads,
        ["num_hidden_layers"] = Layers,
        ["num_key_value_heads"] = KvHeads,
        ["rms_norm_eps"] = 1e-06,
        ["rope_scaling"] = null,
        ["rope_theta"] = RopeTheta,
        ["sliding_window"] = null,
        ["tie_word_embeddings"] = false,
        ["torch_dtype"] = "bfloat16",
        ["transformers_version"] = "4.51.0",
        ["use_cache"] = true,
        ["use_sliding_window"] = false,
        ["vocab_size"] = VocabSize,
    };

    private static SafetensorsBuilder Weights(ScriptPlan plan, Qwen3Tokenizer tokenizer)
    {
        int thinkStart = tokenizer.ThinkStartId;
        int toolCallStart = tokenizer.ToolCallStartId;
        int toolResponse = tokenizer.TokenToId("<tool_response>")!.Value;

        // Each predecessor gets a direction of its own, +1 or -1 along one dimension, so a step's lm_head row matches
        // its predecessor only (the opposite direction scores negative).
        var content = new Dictionary<int, (int Dimension, float Sign)> { [thinkStart] = (ThinkStartMarker, 1), [toolCallStart] = (ToolCallStartMarker, 1) };
        int next = 0;
        foreach (int id in plan.Predecessors.Where(id => !content.ContainsKey(id)))
        {
            if (FirstContent + next / 2 >= Hidden)
            {
                throw new InvalidOperationException($"The scripts need more than {2 * (Hidden - FirstContent) + 2} distinct tokens; shorten them.");
            }

            content[id] = (FirstContent + next / 2, next % 2 == 0 ? 1 : -1);
            next++;
        }

        var embed = new float[VocabSize * Hidden];
        for (int id = 0; id < VocabSize; id++)
        {
            embed[id * Hidden + Bias] = 1;
            var (unit, sign) = id == toolResponse ? (ToolResponseMarker, 1) : content.GetValueOrDefault(id, (Filler, 1));
            embed[id * Hidden + unit] = sign;
        }

        var lmHead = new float[VocabSize * Hidden];
        foreach (var step in plan.Transitions)
        {
            var row = lmHead.AsSpan(step.To * Hidden, Hidden);
            var (dimension, sign) = content[step.From];
            row[dimension] += sign * OutputScale;
            foreach (var (feature, featureSign) in step.Key)
            {
                row[FirstFeature + (int)feature] += OutputScale * KeyWeight * featureSign / step.Key.Count;
            }
        }

        var builder = new SafetensorsBuilder();
        builder.AddBF16("lm_head.weight", [VocabSize, Hidden], lmHead);
        builder.AddBF16("model.embed_tokens.weight", [VocabSize, Hidden], embed);
        builder.AddBF16("model.norm.weight", [Hidden], Ones(Hidden));
        for (int layer = 0; layer < Layers; layer++)
        {
            var attention = layer == 0 ? PreviousTokenLayer() : MarkerLayer();
            string prefix = $"model.layers.{layer}.";
            builder.AddBF16(prefix + "input_layernorm.weight", [Hidden], Ones(Hidden));
            builder.AddBF16(prefix + "post_attention_layernorm.weight", [Hidden], Ones(Hidden));
            builder.AddBF16(prefix + "mlp.gate_proj.weight", [Intermediate, Hidden], new float[Intermediate * Hidden]);
            builder.AddBF16(prefix + "mlp.up_proj.weight", [Intermediate, Hidden], new float[Intermediate * Hidden]);
            builder.AddBF16(prefix + "mlp.down_proj.weight", [Hidden, Intermediate], new float[Hidden * Intermediate]);
            builder.AddBF16(prefix + "self_attn.q_proj.weight", [Heads * HeadDim, Hidden], attention.Q.Values);
            builder.AddBF16(prefix + "self_attn.k_proj.weight", [KvHeads * HeadDim, Hidden], attention.K.Values);
            builder.AddBF16(prefix + "self_attn.v_proj.weight", [KvHeads * HeadDim, Hidden], attention.V.Values);
            builder.AddBF16(prefix + "self_attn.o_proj.weight", [Hidden, Heads * HeadDim], attention.O.Values);
            builder.AddBF16(prefix + "self_attn.q_norm.weight", [HeadDim], Fill(HeadDim, attention.QNorm));
            builder.AddBF16(prefix + "self_attn.k_norm.weight", [HeadDim], Fill(HeadDim, attention.KNorm));
        }

        return builder;
    }

    /// <summary>
    /// Layer 0: query head 0 attends to the previous token only, by position: its query and key come from Bias alone
    /// (so after q_norm/k_norm they are the same for every token) with RoPE pair i of the query turned back by one
    /// position's angle, and the slowest pair opposed to bring the peak score to 0. Its value writes ±1 for
    /// "is &lt;think&gt;" and "is &lt;tool_call&gt;" into two features.
    /// </summary>
    private static AttentionWeights PreviousTokenLayer()
    {
        var a = new AttentionWeights(PreviousTokenNorm, PreviousTokenNorm);
        const int slow = HeadDim / 2 - 1;
        double total = 0;
        for (int i = 0; i < slow; i++)
        {
            double angle = Math.Pow(RopeTheta, -2.0 * i / HeadDim);
            double weight = Math.Pow(PreviousTokenDecay, i / 2.0);
            a.Q[i, Bias] = (float)(weight * Math.Cos(angle));
            a.Q[i + HeadDim / 2, Bias] = (float)(-weight * Math.Sin(angle));
            a.K[i, Bias] = (float)weight;
            total += weight * weight;
        }

        a.Q[slow, Bias] = (float)Math.Sqrt(total);
        a.K[slow, Bias] = -(float)Math.Sqrt(total);

        // The layer's input is the embedding, RMS-normalised: each of its two unit entries becomes sqrt(48).
        SignValue(a, kvHead: 0, column: 0, ThinkStartMarker, (float)Math.Sqrt(Hidden / 2.0));
        SignValue(a, kvHead: 0, column: 1, ToolCallStartMarker, (float)Math.Sqrt(Hidden / 2.0));
        a.O[FirstFeature + (int)Feature.AfterThinkStart, 0] = 1;
        a.O[FirstFeature + (int)Feature.AfterToolCallStart, 1] = 1;
        return a;
    }

    /// <summary>
    /// Layer 1: query heads 0 and 2 (one per key/value head) have a constant query; a key is large along it only for
    /// the head's marker token (&lt;tool_call&gt; or &lt;tool_response&gt;), in the slowest RoPE pair so position does
    /// not matter. The head reads its marker tokens if there are any, all other tokens otherwise, and its value is
    /// +1 on a marker and -1 elsewhere.
    /// </summary>
    private static AttentionWeights MarkerLayer()
    {
        var a = new AttentionWeights(MarkerNorm, MarkerNorm);
        const int slow = HeadDim / 2 - 1;
        foreach (var (kvHead, marker, feature) in new[] { (0, ToolCallStartMarker, Feature.ToolsInPrompt), (1, ToolResponseMarker, Feature.ToolResponseInPrompt) })
        {
            int queryHead = kvHead * (Heads / KvHeads);
            a.Q[queryHead * HeadDim + slow, Bias] = 1;
            a.K[kvHead * HeadDim + slow, marker] = MarkerKey;
            a.K[kvHead * HeadDim + slow - 1, Bias] = 1;

            // The input is the embedding plus layer 0's two ±1 features: norm 2, so a unit entry becomes sqrt(24).
            SignValue(a, kvHead, column: 0, marker, (float)Math.Sqrt(Hidden / 4.0));
            a.O[FirstFeature + (int)feature, queryHead * HeadDim] = 1;
        }

        return a;
    }

    /// <summary>Value entry <paramref name="column"/> of a key/value head: +1 for tokens with <paramref name="marker"/>, -1 for the others.</summary>
    private static void SignValue(AttentionWeights a, int kvHead, int column, int marker, float unit)
    {
        a.V[kvHead * HeadDim + column, Bias] = -1 / unit;
        a.V[kvHead * HeadDim + column, marker] = 2 / unit;
    }

    private static float[] Ones(int n) => Fill(n, 1);

    private static float[] Fill(int n, float value) => Enumerable.Repeat(value, n).ToArray();

    private sealed class AttentionWeights(float qNorm, float kNorm)
    {
        public Matrix Q { get; } = new(Heads * HeadDim, Hidden);

        public Matrix K { get; } = new(KvHeads * HeadDim, Hidden);

        public Matrix V { get; } = new(KvHeads * HeadDim, Hidden);

        public Matrix O { get; } = new(Hidden, Heads * HeadDim);

        public float QNorm => qNorm;

        public float KNorm => kNorm;
    }

    private sealed class Matrix(int rows, int columns)
    {
        public float[] Values { get; } = new float[rows * columns];

        public float this[int row, int column]
        {
            get => Values[row * columns + column];
            set => Values[row * columns + column] = value;
        }
    }
}
