using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Retrieval;

/// <summary>
/// Embedding and reranker fixtures made from the tiny model's weights at test time: Qwen3-Embedding and Qwen3-Reranker
/// are Qwen3 checkpoints, so the tiny model stands for both, in the Qwen3ForCausalLM layout (the fixture as it is) and
/// in the Qwen3Model layout Qwen3-Embedding is published in (every name without <c>model.</c>, no <c>lm_head</c>).
/// </summary>
internal static class RetrievalFixtures
{
    public static Qwen3ModelOptions Options { get; } = new() { ThreadCount = 2 };

    /// <summary>The tiny model with every tensor renamed without its <c>model.</c> prefix.</summary>
    public static TinyModelVariant WithoutModelPrefix() => TinyModelVariant.Create(
        (name, values, shape) => [(name.StartsWith("model.", StringComparison.Ordinal) ? name["model.".Length..] : name, "BF16", shape, values)]);

    /// <summary>Texts of different lengths, a few spanning more than one KV page (256 positions) or one batch block (512 tokens).</summary>
    public static string[] MixedTexts() =>
    [
        "Hi",
        "The capital of France is Paris.",
        string.Join(' ', Enumerable.Repeat("retrieval augmented generation", 60)),
        "x",
        string.Join(", ", Enumerable.Range(0, 400).Select(i => $"item {i}")),
        "Gravity is a force that attracts two bodies towards each other.",
    ];
}
