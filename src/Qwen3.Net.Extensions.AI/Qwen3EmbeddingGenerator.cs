using Microsoft.Extensions.AI;
using Qwen3.Net.Retrieval;

namespace Qwen3.Net.Extensions.AI;

/// <summary>
/// A Microsoft.Extensions.AI <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a loaded
/// <see cref="Qwen3Embedder"/>: the values of one call run together through the model's batch, and
/// <see cref="EmbeddingGenerationOptions.Dimensions"/> cuts the vectors (Matryoshka, renormalized).
/// </summary>
/// <remarks>
/// Qwen3-Embedding embeds queries with an instruction naming the task and documents without: create one generator for
/// documents and one with a <c>queryTask</c> for queries, over the same embedder.
/// </remarks>
public sealed class Qwen3EmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly Qwen3Embedder _embedder;
    private readonly string? _queryTask;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Creates a generator; disposing it leaves the embedder loaded.</summary>
    /// <param name="embedder">The embedding model; it must stay loaded while the generator is used.</param>
    /// <param name="queryTask">
    /// When set, every value is a query, embedded as <see cref="Qwen3Embedder.FormatQuery"/> with this task (e.g.
    /// <see cref="Qwen3Embedder.DefaultTask"/>); null to embed values as they are, as documents are.
    /// </param>
    public Qwen3EmbeddingGenerator(Qwen3Embedder embedder, string? queryTask = null)
    {
        ArgumentNullException.ThrowIfNull(embedder);
        _embedder = embedder;
        _queryTask = queryTask;
        ModelId = Path.GetFileName(embedder.Model.Folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        _metadata = new EmbeddingGeneratorMetadata(Qwen3ChatClient.ProviderName, new Uri(embedder.Model.Folder), ModelId, embedder.Dimensions);
    }

    /// <summary>The model id reported on embeddings: the model folder's name.</summary>
    public string ModelId { get; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">No values, an empty value, or a value longer than the model takes.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="EmbeddingGenerationOptions.Dimensions"/> is below 1 or above the model's hidden size.</exception>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var inputs = new List<int[]>();
        foreach (string value in values)
        {
            if (string.IsNullOrEmpty(value))
            {
                throw new ArgumentException($"Value {inputs.Count} is empty.", nameof(values));
            }

            inputs.Add(_embedder.Tokenize(_queryTask is null ? value : Qwen3Embedder.FormatQuery(_queryTask, value)));
        }

        float[][] vectors = await _embedder.EmbedTokensAsync(inputs, options?.Dimensions, cancellationToken).ConfigureAwait(false);
        var createdAt = DateTimeOffset.UtcNow;
        long tokens = inputs.Sum(input => (long)input.Length);
        return new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = ModelId, CreatedAt = createdAt }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(EmbeddingGeneratorMetadata) ? _metadata
            : serviceType == typeof(Qwen3Embedder) ? _embedder
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <summary>Does nothing: the embedder belongs to the caller, who disposes it after the generator's calls are done.</summary>
    public void Dispose()
    {
    }
}
