using System.Text.Json.Nodes;
using Qwen3.Net.Retrieval;
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

    /// <summary>An embedder on <paramref name="folder"/> (the tiny model by default) with the tests' options.</summary>
    public static Qwen3Embedder LoadEmbedder(string? folder = null) => Qwen3Embedder.Load(folder ?? Fixtures.TinyModelFolder, Options);

    /// <summary>A reranker on <paramref name="folder"/> (the tiny model by default) with the tests' options.</summary>
    public static Qwen3Reranker LoadReranker(string? folder = null) => Qwen3Reranker.Load(folder ?? Fixtures.TinyModelFolder, Options);

    /// <summary>The tiny model with every tensor renamed without its <c>model.</c> prefix, and its config edited if asked.</summary>
    public static TinyModelVariant WithoutModelPrefix(Action<JsonObject>? editConfig = null) => TinyModelVariant.Create(
        (name, values, shape) => [(name.StartsWith("model.", StringComparison.Ordinal) ? name["model.".Length..] : name, "BF16", shape, values)],
        editConfig);

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

/// <summary>A retrieval model on the tiny fixture, loaded once per test class and disposed after it.</summary>
public abstract class LoadedRetrievalModel<T>(T value) : IDisposable
    where T : IDisposable
{
    public T Value { get; } = value;

    public void Dispose() => Value.Dispose();
}

/// <summary>The tiny model as a <see cref="Qwen3Embedder"/>, one per test class.</summary>
public sealed class LoadedEmbedder() : LoadedRetrievalModel<Qwen3Embedder>(RetrievalFixtures.LoadEmbedder());

/// <summary>The tiny model as a <see cref="Qwen3Reranker"/>, one per test class.</summary>
public sealed class LoadedReranker() : LoadedRetrievalModel<Qwen3Reranker>(RetrievalFixtures.LoadReranker());
