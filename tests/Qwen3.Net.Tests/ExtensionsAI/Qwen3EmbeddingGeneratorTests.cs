using Microsoft.Extensions.AI;
using Qwen3.Net.Extensions.AI;
using Qwen3.Net.Retrieval;
using Qwen3.Net.Tests.Retrieval;

namespace Qwen3.Net.Tests.ExtensionsAI;

public sealed class Qwen3EmbeddingGeneratorTests(LoadedEmbedder loaded) : IClassFixture<LoadedEmbedder>
{
    private readonly Qwen3Embedder _embedder = loaded.Value;

    [Fact]
    public async Task Documents_are_embedded_as_they_are_with_dimensions_and_usage()
    {
        using IEmbeddingGenerator<string, Embedding<float>> generator = new Qwen3EmbeddingGenerator(_embedder);
        string[] texts = ["first document", "second, longer document about something else"];

        var embeddings = await generator.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 16 });

        float[][] expected = await _embedder.EmbedAsync(texts, dimensions: 16);
        // Within 1e-5, not equal: which texts share a step (and so the matrix shapes) varies between calls.
        embeddings.Should().HaveCount(2);
        for (int t = 0; t < 2; t++)
        {
            float[] vector = embeddings[t].Vector.ToArray();
            vector.Should().HaveCount(16);
            for (int i = 0; i < 16; i++)
            {
                vector[i].Should().BeApproximately(expected[t][i], 1e-5f, $"text {t}, element {i}");
            }
        }

        embeddings.Should().OnlyContain(e => e.ModelId == "tiny-qwen3" && e.CreatedAt != null);
        embeddings.Usage!.InputTokenCount.Should().Be(texts.Sum(t => _embedder.Tokenize(t).Length));
        generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions.Should().Be(96);
        generator.GetService<Qwen3Embedder>().Should().BeSameAs(_embedder);
    }

    [Fact]
    public async Task A_query_generator_adds_the_instruction()
    {
        using var generator = new Qwen3EmbeddingGenerator(_embedder, queryTask: Qwen3Embedder.DefaultTask);
        var vector = await generator.GenerateVectorAsync("what is the capital of France?");
        vector.ToArray().Should().Equal(await _embedder.EmbedAsync(Qwen3Embedder.FormatQuery(Qwen3Embedder.DefaultTask, "what is the capital of France?")));
    }

    [Fact]
    public async Task Empty_values_and_bad_dimensions_are_refused()
    {
        using var generator = new Qwen3EmbeddingGenerator(_embedder);
        await generator.Invoking(g => g.GenerateAsync(["a", ""])).Should().ThrowAsync<ArgumentException>().WithMessage("Value 1 is empty*");
        await generator.Invoking(g => g.GenerateAsync(Array.Empty<string>())).Should().ThrowAsync<ArgumentException>();
        await generator.Invoking(g => g.GenerateAsync(["a"], new EmbeddingGenerationOptions { Dimensions = 97 })).Should().ThrowAsync<ArgumentOutOfRangeException>();
    }
}
