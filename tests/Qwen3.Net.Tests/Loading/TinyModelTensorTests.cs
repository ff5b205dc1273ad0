using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Loading;

public sealed unsafe class TinyModelTensorTests
{
    static IEnumerable<(string Name, int[] Shape)> ExpectedTensors(Qwen3Config c)
    {
        yield return ("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize]);
        yield return ("model.norm.weight", [c.HiddenSize]);
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return (p + "input_layernorm.weight", [c.HiddenSize]);
            yield return (p + "post_attention_layernorm.weight", [c.HiddenSize]);
            yield return (p + "self_attn.q_proj.weight", [c.NumAttentionHeads * c.HeadDim, c.HiddenSize]);
            yield return (p + "self_attn.k_proj.weight", [c.NumKeyValueHeads * c.HeadDim, c.HiddenSize]);
            yield return (p + "self_attn.v_proj.weight", [c.NumKeyValueHeads * c.HeadDim, c.HiddenSize]);
            yield return (p + "self_attn.o_proj.weight", [c.HiddenSize, c.NumAttentionHeads * c.HeadDim]);
            yield return (p + "self_attn.q_norm.weight", [c.HeadDim]);
            yield return (p + "self_attn.k_norm.weight", [c.HeadDim]);
            yield return (p + "mlp.gate_proj.weight", [c.IntermediateSize, c.HiddenSize]);
            yield return (p + "mlp.up_proj.weight", [c.IntermediateSize, c.HiddenSize]);
            yield return (p + "mlp.down_proj.weight", [c.HiddenSize, c.IntermediateSize]);
        }
    }

    static float Bf16At(TensorView t, long index) => BitConverter.UInt32BitsToSingle((uint)((ushort*)t.Data)[index] << 16);

    [Fact]
    public void EveryTensorIsPresentAsBf16WithTheShapeTheConfigImplies()
    {
        Qwen3Config c = Qwen3Config.Load(Fixtures.TinyModelFolder);
        using TensorStore store = TensorStore.Open(Fixtures.TinyModelFolder);
        var expected = ExpectedTensors(c).ToList();

        store.TensorNames.Should().BeEquivalentTo(expected.Select(e => e.Name));
        store.Contains("lm_head.weight").Should().BeFalse("the fixture ties its embeddings");
        foreach ((string name, int[] shape) in expected)
        {
            TensorView t = store.Get(name, shape);
            t.DType.Should().Be(TensorDType.BF16, name);
            t.ElementCount.Should().Be(shape.Aggregate(1L, (a, b) => a * b), name);
            t.FilePath.Should().Be(Path.Combine(Path.GetFullPath(Fixtures.TinyModelFolder), "model.safetensors"));
        }
        // The data section of the fixture is exactly its tensors: file length minus the 8-byte length and the header.
        store.TotalBytes.Should().Be(29615296);
    }

    [Fact]
    public void Bf16ElementsReadBackAsWritten()
    {
        using TensorStore store = TensorStore.Open(Fixtures.TinyModelFolder);

        // Expected values read from the file with python3 (struct, raw BF16 bits << 16).
        Bf16At(store.Get("model.norm.weight"), 0).Should().Be(0.85546875f);
        Bf16At(store.Get("model.embed_tokens.weight"), 151935L * 96 + 95).Should().Be(0.494140625f);
        Bf16At(store.Get("model.layers.1.self_attn.q_proj.weight"), 5 * 96 + 7).Should().Be(0.0302734375f);
    }
}
