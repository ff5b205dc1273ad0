using System.Numerics.Tensors;

namespace Qwen3.Net.Tests.Model;

/// <summary>
/// The same tiny model stored the ways real Qwen3 checkpoints are (F32/F16, sharded, untied head) must give the
/// golden results; broken checkpoints must be refused with an error naming the tensor.
/// </summary>
public sealed class CheckpointLayoutTests(TinyModel tiny) : IClassFixture<TinyModel>
{
    [Fact]
    public void Untied_F32_weights_in_three_shards_reproduce_the_goldens()
    {
        // BF16 widens to F32 exactly, and an lm_head equal to the embedding is the tied model untied: same logits.
        using var variant = TinyModelVariant.Create(
            (name, values, shape) => name == "model.embed_tokens.weight"
                ? [(name, "F32", shape, values), ("lm_head.weight", "F32", shape, values)]
                : [(name, "F32", shape, values)],
            config => config["tie_word_embeddings"] = false,
            shards: 3);
        using var model = Qwen3Model.Load(variant.Path);

        model.Config.TieWordEmbeddings.Should().BeFalse();
        var golden = tiny.Cases["prompt_7"];
        AssertMatchesGolden(model, golden);
    }

    [Fact]
    public void F16_weights_match_the_same_values_stored_as_F32()
    {
        static float ToHalf(float v) => (float)(Half)v;
        using var f16 = TinyModelVariant.Create((name, values, shape) => [(name, "F16", shape, values)]);
        using var f32 = TinyModelVariant.Create((name, values, shape) => [(name, "F32", shape, values.Select(ToHalf).ToArray())]);
        using var modelF16 = Qwen3Model.Load(f16.Path);
        using var modelF32 = Qwen3Model.Load(f32.Path);
        int[] prompt = tiny.Cases["prompt_7"].PromptIds;

        using var a = modelF16.CreateContext(64);
        using var b = modelF32.CreateContext(64);
        float[] fromF16 = a.Evaluate(prompt).ToArray();
        float[] fromF32 = b.Evaluate(prompt).ToArray();

        TensorPrimitives.MaxMagnitude(Difference(fromF16, fromF32)).Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void A_missing_layer_tensor_is_named()
    {
        const string missing = "model.layers.1.mlp.up_proj.weight";
        using var variant = TinyModelVariant.Create((name, values, shape) => name == missing ? [] : [(name, "BF16", shape, values)]);

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>().Where(e => e.TensorName == missing && e.Message.Contains(missing));
    }

    [Fact]
    public void A_tensor_whose_shape_disagrees_with_the_config_is_named_with_both_shapes()
    {
        const string wrong = "model.layers.0.self_attn.k_proj.weight";
        using var variant = TinyModelVariant.Create((name, values, shape) => name == wrong
            ? [(name, "BF16", [shape[1], shape[0]], values)]
            : [(name, "BF16", shape, values)]);

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>()
            .Where(e => e.TensorName == wrong && e.FilePath!.EndsWith("model.safetensors") && e.Message.Contains("64") && e.Message.Contains("96"));
    }

    [Fact]
    public void An_untied_config_without_lm_head_is_refused()
    {
        using var variant = TinyModelVariant.Create(editConfig: config => config["tie_word_embeddings"] = false);

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>().Where(e => e.TensorName == "lm_head.weight");
    }

    [Fact]
    public void A_tied_config_with_its_own_lm_head_is_refused()
    {
        using var variant = TinyModelVariant.Create((name, values, shape) => name == "model.embed_tokens.weight"
            ? [(name, "BF16", shape, values), ("lm_head.weight", "BF16", shape, values)]
            : [(name, "BF16", shape, values)]);

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>().Where(e => e.TensorName == "lm_head.weight" && e.Message.Contains("tie_word_embeddings"));
    }

    [Fact]
    public void A_tensor_the_architecture_does_not_have_is_refused_rather_than_ignored()
    {
        const string bias = "model.layers.0.self_attn.q_proj.bias";
        using var variant = TinyModelVariant.Create((name, values, shape) => name == "model.norm.weight"
            ? [(name, "BF16", shape, values), (bias, "BF16", [128], new float[128])]
            : [(name, "BF16", shape, values)]);

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>().Where(e => e.TensorName == bias);
    }

    [Fact]
    public void A_missing_shard_is_named()
    {
        using var variant = TinyModelVariant.Create(shards: 2);
        File.Delete(Path.Combine(variant.Path, "model-00002-of-00002.safetensors"));

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<ModelLoadException>().Where(e => e.Message.Contains("model-00002-of-00002.safetensors"));
    }

    [Fact]
    public void A_model_with_another_architecture_is_not_supported()
    {
        using var variant = TinyModelVariant.Create(editConfig: config => config["architectures"] = new System.Text.Json.Nodes.JsonArray("Qwen3MoeForCausalLM"));

        var act = () => Qwen3Model.Load(variant.Path);

        act.Should().Throw<NotSupportedException>().WithMessage("*Qwen3MoeForCausalLM*");
    }

    [Fact]
    public void A_missing_model_folder_is_named()
    {
        string folder = Path.Combine(Path.GetTempPath(), "qwen3net-no-such-model-" + Guid.NewGuid().ToString("N"));

        var act = () => Qwen3Model.Load(folder);

        act.Should().Throw<ModelLoadException>().Where(e => e.FilePath == folder);
    }

    private static void AssertMatchesGolden(Qwen3Model model, GoldenCase golden)
    {
        float[] expected = TinyModel.ReadFloats(golden.LogitsFile);
        int vocab = model.Config.VocabSize;
        using var ctx = model.CreateContext();
        for (int row = 0; row < golden.LogitPositions.Length; row++)
        {
            int position = golden.LogitPositions[row];
            float[] logits = ctx.Evaluate(golden.PromptIds.AsSpan(ctx.Position, position + 1 - ctx.Position)).ToArray();
            TensorPrimitives.MaxMagnitude(Difference(logits, expected.AsSpan(row * vocab, vocab).ToArray())).Should().BeLessThanOrEqualTo(1e-3f, $"position {position}");
        }
    }

    private static float[] Difference(float[] a, float[] b)
    {
        var d = new float[a.Length];
        TensorPrimitives.Subtract(a, b, d);
        return d;
    }
}
