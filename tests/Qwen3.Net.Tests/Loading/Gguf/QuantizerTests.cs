using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;
using Qwen3.Chat;
using Qwen3.Net.Kernels;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Tests.Model;
using Xunit.Abstractions;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>The tiny model quantized by <see cref="Qwen3Quantizer"/> once per type, shared by the tests.</summary>
public sealed class QuantizedTinyModels : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly Dictionary<QuantizationType, string> _paths = [];

    public string PathOf(QuantizationType type)
    {
        lock (_paths)
        {
            if (!_paths.TryGetValue(type, out string? path))
            {
                path = _folder.File($"tiny-qwen3-{type.ToString().ToLowerInvariant()}.gguf");
                Qwen3Quantizer.QuantizeAsync(Fixtures.TinyModelFolder, path, type).GetAwaiter().GetResult();
                _paths[type] = path;
            }

            return path;
        }
    }

    public void Dispose() => _folder.Dispose();
}

public sealed class QuantizerTests(QuantizedTinyModels files, TinyModel tiny, ITestOutputHelper output)
    : IClassFixture<QuantizedTinyModels>, IClassFixture<TinyModel>
{
    [Theory]
    [InlineData(QuantizationType.Q8_0, "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0")]
    // The tiny model's rows of 96 and 128 values do not fill 256-value blocks: those matrices fall back as llama.cpp's
    // do, Q4_K to Q5_0 and Q6_K (the tied embedding, layer 1's attn_v by use_more_bits) and Q5_K to Q8_0; its ffn_down
    // rows (256) keep the K types, Q6_K in layer 1 (use_more_bits of the last eighth).
    [InlineData(QuantizationType.Q4_K_M, "Q8_0", "Q5_0", "Q8_0", "Q4_K", "Q6_K")]
    [InlineData(QuantizationType.Q5_K_M, "Q8_0", "Q8_0", "Q8_0", "Q5_K", "Q6_K")]
    [InlineData(QuantizationType.Q6_K, "Q8_0", "Q8_0", "Q8_0", "Q6_K", "Q6_K")]
    [InlineData(QuantizationType.Q5_0, "Q8_0", "Q5_0", "Q5_0", "Q5_0", "Q5_0")]
    // Q2_K: its Q2_K and Q3_K matrices fall back to Q4_0 but ffn_down, whose Q3_K rows fill 256-blocks.
    [InlineData(QuantizationType.Q2_K, "Q8_0", "Q4_0", "Q4_0", "Q3_K", "Q3_K")]
    public void TheTinyModelsTensorsGetLlamaCppsTypes(QuantizationType type, string embedding, string attention, string attnV1, string down0, string down1)
    {
        using GgufFile file = GgufFile.Open(files.PathOf(type));
        var types = file.Tensors.ToDictionary(t => t.Name, t => t.Type.ToString());

        types.Should().NotContainKey("output.weight", "the tiny model ties its embedding");
        types["token_embd.weight"].Should().Be(embedding);
        types["blk.0.attn_q.weight"].Should().Be(attention);
        types["blk.0.attn_v.weight"].Should().Be(attention);
        types["blk.1.attn_v.weight"].Should().Be(attnV1);
        types["blk.0.ffn_down.weight"].Should().Be(down0);
        types["blk.1.ffn_down.weight"].Should().Be(down1);
        types.Where(t => t.Key.Contains("norm", StringComparison.Ordinal)).Should().OnlyContain(t => t.Value == "F32");
        file.GetInteger("general.file_type").Should().Be(Qwen3GgufQuantizer.FileType(type));
        // llama-quantize's order: global tensors by name, then each layer's by name.
        file.Tensors.Select(t => t.Name).Take(5).Should().Equal(
            "output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_k_norm.weight", "blk.0.attn_norm.weight");
        file.Tensors[^1].Name.Should().Be("blk.1.ffn_up.weight");
    }

    // SHA-256 of llama-quantize's output, made by hand with the llama.cpp peer (commit d32676d77, docs/quantization.md):
    // `Qwen3.Net.Benchmarks convert-gguf --model tests/fixtures/tiny-qwen3 --out tiny-bf16.gguf`, then
    // `llama-quantize tiny-bf16.gguf out.gguf TYPE`. For Q8_0, Q6_K, Q4_K_M, Q5_0 and Q2_K the whole data section (tensor data
    // and padding, from general.alignment on); for Q5_K_M the ffn_down tensors, the only ones whose rows fill 256-blocks
    // (llama.cpp's fallback for the others, Q5_1, is a type Qwen3.Net does not read); for Q3_K_M a Q3_K matrix fallen
    // back to Q4_0, the Q4_K ffn_down and a Q4_K attn_output fallen back to Q5_0 (its attn_v, Q5_K, falls back to Q5_1
    // there; the generated 1.7B's whole Q3_K_M data section is llama-quantize's, docs/quantization.md).
    [Theory]
    [InlineData(QuantizationType.Q8_0, null, "86740ae2b5b30d892ecd29cd2d18e000675456b7cad7cee0af9b278383efc862")]
    [InlineData(QuantizationType.Q6_K, null, "5c4a71d2f768f15ac4f88c5b6b6d943b484420de22d079200bfaed7f30160fcb")]
    [InlineData(QuantizationType.Q4_K_M, null, "a8e0f8c0d65aa8a7a12586d509c17e2873970a33d1f7864283bfc3c7810ec894")]
    [InlineData(QuantizationType.Q5_0, null, "22182d8c2aba5659c1985d60e8827b2bf14b9f026cfe77f0fc53b32a7091c784")]
    [InlineData(QuantizationType.Q2_K, null, "4c7d294f3742d3230f724eb2c904db845be9756694122f98346250cc9092f30a")]
    [InlineData(QuantizationType.Q5_K_M, "blk.0.ffn_down.weight", "5951ecb1d6237e452df198ca273ae507e77e7c23ecef23c7fa9feb80254c489e")]
    [InlineData(QuantizationType.Q5_K_M, "blk.1.ffn_down.weight", "59f641ea96096d9940606abf04285b4ba0df78c7bce8a4af57bbd829ae0d5a57")]
    [InlineData(QuantizationType.Q3_K_M, "blk.0.attn_q.weight", "8d5475304bfd1f637c7fae7d6835b7f83ff4a3877e49f9705f5bc9d0f5a59f55")]
    [InlineData(QuantizationType.Q3_K_M, "blk.0.ffn_down.weight", "d29621d00f41d3efd0d64788ea846c24f1d0a6787fe70a0f0cf8fbe9b3e1f92c")]
    [InlineData(QuantizationType.Q3_K_M, "blk.1.attn_output.weight", "db6652c0da29681adf6976341324e9773674a82df44d1df536112335d259aef1")]
    public void TheBytesAreLlamaQuantizes(QuantizationType type, string? tensor, string llamaQuantizeSha256)
    {
        using GgufFile file = GgufFile.Open(files.PathOf(type));
        byte[] bytes = File.ReadAllBytes(file.Path);
        ReadOnlySpan<byte> data = tensor is null
            ? bytes.AsSpan((int)file.DataOffset)
            : bytes.AsSpan((int)(file.DataOffset + file.Tensors.Single(t => t.Name == tensor).Offset),
                (int)file.Tensors.Single(t => t.Name == tensor).ByteLength);

        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data)).Should().Be(llamaQuantizeSha256);
    }

    [Theory]
    [InlineData(QuantizationType.Q4_K_M, "Q4_K")]
    [InlineData(QuantizationType.Q5_K_M, "Q5_K")]
    public void A28LayerModelGetsQ6_KWhereLlamaCppUsesMoreBits(QuantizationType type, string baseType)
    {
        // Qwen3-1.7B's shapes; llama.cpp's use_more_bits(i, 28): i < 3, i >= 24, or (i − 3) % 3 == 2.
        int[] moreBits = [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27];
        for (int layer = 0; layer < 28; layer++)
        {
            string expected = moreBits.Contains(layer) ? "Q6_K" : baseType;
            Type(type, $"blk.{layer}.attn_v.weight", [1024, 2048]).Should().Be(expected, $"attn_v of layer {layer}");
            Type(type, $"blk.{layer}.ffn_down.weight", [2048, 6144]).Should().Be(expected, $"ffn_down of layer {layer}");
            Type(type, $"blk.{layer}.attn_k.weight", [1024, 2048]).Should().Be(baseType);
            Type(type, $"blk.{layer}.ffn_up.weight", [6144, 2048]).Should().Be(baseType);
            Type(type, $"blk.{layer}.attn_norm.weight", [2048]).Should().Be("F32");
        }

        Type(type, "token_embd.weight", [151936, 2048]).Should().Be("Q6_K", "a tied embedding is quantized as the output head");
        Type(type, "token_embd.weight", [151936, 2048], tied: false).Should().Be(baseType);
        Type(type, "output.weight", [151936, 2048], tied: false).Should().Be("Q6_K");
        Type(QuantizationType.Q8_0, "output.weight", [151936, 2048], tied: false).Should().Be("Q8_0");
        Type(type, "blk.0.ffn_up.weight", [64, 48]).Should().Be("F32", "rows of 48 fill no block");
        Type(type, "blk.0.ffn_up.weight", [64, 96]).Should().Be(type == QuantizationType.Q4_K_M ? "Q5_0" : "Q8_0", "llama.cpp's fallback for rows of 96");
    }

    [Fact]
    public void A28LayerModelInQ5_0IsQ5_0ButItsOutputHead()
    {
        for (int layer = 0; layer < 28; layer++)
        {
            Type(QuantizationType.Q5_0, $"blk.{layer}.attn_v.weight", [1024, 2048]).Should().Be("Q5_0", $"attn_v of layer {layer}");
            Type(QuantizationType.Q5_0, $"blk.{layer}.ffn_down.weight", [2048, 6144]).Should().Be("Q5_0", $"ffn_down of layer {layer}");
            Type(QuantizationType.Q5_0, $"blk.{layer}.attn_q.weight", [2048, 2048]).Should().Be("Q5_0");
        }

        Type(QuantizationType.Q5_0, "token_embd.weight", [151936, 2048]).Should().Be("Q6_K", "a tied embedding is quantized as the output head");
        Type(QuantizationType.Q5_0, "token_embd.weight", [151936, 2048], tied: false).Should().Be("Q5_0");
        Type(QuantizationType.Q5_0, "output.weight", [151936, 2048], tied: false).Should().Be("Q6_K");
        Type(QuantizationType.Q5_0, "output.weight", [151936, 96], tied: false).Should().Be("Q8_0", "Q6_K's fallback");
    }

    [Fact]
    public void A28LayerModelInQ3_K_MGetsLlamaCppsMix()
    {
        // llama.cpp's Q3_K_M rules: attn_v Q5_K for its first two tensors, then Q4_K; ffn_down Q5_K below n_layer / 16
        // (one layer of 28), then Q4_K; attn_output Q4_K; the other matrices Q3_K.
        for (int layer = 0; layer < 28; layer++)
        {
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.attn_v.weight", [1024, 2048]).Should().Be(layer < 2 ? "Q5_K" : "Q4_K", $"attn_v of layer {layer}");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.ffn_down.weight", [2048, 6144]).Should().Be(layer < 1 ? "Q5_K" : "Q4_K", $"ffn_down of layer {layer}");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.attn_output.weight", [2048, 2048]).Should().Be("Q4_K");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.attn_q.weight", [2048, 2048]).Should().Be("Q3_K");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.attn_k.weight", [1024, 2048]).Should().Be("Q3_K");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.ffn_gate.weight", [6144, 2048]).Should().Be("Q3_K");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.ffn_up.weight", [6144, 2048]).Should().Be("Q3_K");
            Type(QuantizationType.Q3_K_M, $"blk.{layer}.ffn_norm.weight", [2048]).Should().Be("F32");
        }

        // Qwen3-8B's 36 layers: ffn_down Q5_K in layers 0 and 1 (36 / 16 = 2).
        Type(QuantizationType.Q3_K_M, "blk.1.ffn_down.weight", [4096, 12288], layers: 36).Should().Be("Q5_K");
        Type(QuantizationType.Q3_K_M, "blk.2.ffn_down.weight", [4096, 12288], layers: 36).Should().Be("Q4_K");
        Type(QuantizationType.Q3_K_M, "token_embd.weight", [151936, 2048]).Should().Be("Q6_K", "a tied embedding is quantized as the output head");
        Type(QuantizationType.Q3_K_M, "token_embd.weight", [151936, 4096], tied: false).Should().Be("Q3_K");
        Type(QuantizationType.Q3_K_M, "output.weight", [151936, 4096], tied: false).Should().Be("Q6_K");
        Type(QuantizationType.Q3_K_M, "blk.0.attn_q.weight", [64, 96]).Should().Be("Q4_0", "llama.cpp's fallback for Q3_K rows of 96");
        Type(QuantizationType.Q3_K_M, "blk.0.attn_q.weight", [64, 48]).Should().Be("F32", "rows of 48 fill no block");
    }

    [Fact]
    public void A28LayerModelInQ2_KGetsLlamaCppsMix()
    {
        // llama.cpp's Q2_K rules: attn_v Q3_K, or Q4_K where four or more query heads share a key/value head
        // (n_gqa ≥ 4: Qwen3-4B and up); ffn_down and attn_output Q3_K; the other matrices Q2_K.
        for (int layer = 0; layer < 28; layer++)
        {
            Type(QuantizationType.Q2_K, $"blk.{layer}.attn_v.weight", [1024, 2048]).Should().Be("Q3_K", $"attn_v of layer {layer}, 16 / 8 heads");
            Type(QuantizationType.Q2_K, $"blk.{layer}.attn_v.weight", [1024, 4096], queryGroupSize: 4).Should().Be("Q4_K", $"attn_v of layer {layer}, 32 / 8 heads");
            Type(QuantizationType.Q2_K, $"blk.{layer}.ffn_down.weight", [2048, 6144]).Should().Be("Q3_K");
            Type(QuantizationType.Q2_K, $"blk.{layer}.attn_output.weight", [2048, 2048]).Should().Be("Q3_K");
            Type(QuantizationType.Q2_K, $"blk.{layer}.attn_q.weight", [2048, 2048]).Should().Be("Q2_K");
            Type(QuantizationType.Q2_K, $"blk.{layer}.attn_k.weight", [1024, 2048]).Should().Be("Q2_K");
            Type(QuantizationType.Q2_K, $"blk.{layer}.ffn_gate.weight", [6144, 2048]).Should().Be("Q2_K");
            Type(QuantizationType.Q2_K, $"blk.{layer}.ffn_up.weight", [6144, 2048]).Should().Be("Q2_K");
        }

        Type(QuantizationType.Q2_K, "token_embd.weight", [151936, 2048]).Should().Be("Q6_K", "a tied embedding is quantized as the output head");
        Type(QuantizationType.Q2_K, "token_embd.weight", [151936, 4096], tied: false).Should().Be("Q2_K");
        Type(QuantizationType.Q2_K, "output.weight", [151936, 4096], tied: false).Should().Be("Q6_K");
        Type(QuantizationType.Q2_K, "blk.0.ffn_up.weight", [64, 96]).Should().Be("Q4_0", "llama.cpp's fallback for Q2_K rows of 96");
        Type(QuantizationType.Q2_K, "blk.0.ffn_down.weight", [64, 96]).Should().Be("Q4_0", "and for Q3_K rows of 96");
    }

    [Theory]
    // llama.cpp's _S and _L rules: Q4_K_S attn_v Q5_K in its first four tensors and ffn_down Q5_K below n_layer / 8
    // (layers 0–2 of 28); Q3_K_L attn_v, attn_output and ffn_down Q5_K; Q3_K_S and Q5_K_S no exceptions. The generated
    // 1.7B in each is llama-quantize's, tensor for tensor (docs/quantization.md).
    [InlineData(QuantizationType.Q3_K_S, "Q3_K", "Q3_K", "Q3_K", "Q3_K", "Q3_K", "Q3_K")]
    [InlineData(QuantizationType.Q3_K_L, "Q3_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K")]
    [InlineData(QuantizationType.Q4_K_S, "Q4_K", "Q5_K", "Q4_K", "Q5_K", "Q4_K", "Q4_K")]
    [InlineData(QuantizationType.Q5_K_S, "Q5_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K")]
    public void A28LayerModelInAnSOrLFileGetsLlamaCppsMix(QuantizationType type, string baseType, string earlyV, string lateV, string earlyDown, string lateDown, string output)
    {
        for (int layer = 0; layer < 28; layer++)
        {
            Type(type, $"blk.{layer}.attn_v.weight", [1024, 2048]).Should().Be(layer < 4 ? earlyV : lateV, $"attn_v of layer {layer}");
            Type(type, $"blk.{layer}.ffn_down.weight", [2048, 6144]).Should().Be(layer < 3 ? earlyDown : lateDown, $"ffn_down of layer {layer}");
            Type(type, $"blk.{layer}.attn_output.weight", [2048, 2048]).Should().Be(output);
            Type(type, $"blk.{layer}.attn_q.weight", [2048, 2048]).Should().Be(baseType);
            Type(type, $"blk.{layer}.ffn_up.weight", [6144, 2048]).Should().Be(baseType);
        }

        Type(type, "token_embd.weight", [151936, 2048]).Should().Be("Q6_K", "a tied embedding is quantized as the output head");
        Type(type, "token_embd.weight", [151936, 4096], tied: false).Should().Be(baseType);
        Type(type, "output.weight", [151936, 4096], tied: false).Should().Be("Q6_K");
        Qwen3GgufQuantizer.FileType(type).Should().Be(type switch
        {
            QuantizationType.Q3_K_S => 11u,
            QuantizationType.Q3_K_L => 13u,
            QuantizationType.Q4_K_S => 14u,
            _ => 16u,
        });
    }

    // Only the int8 kernels run on their scalar references in the reference run: the float kernels' (attention's)
    // vector and scalar sums differ in rounding, and on a random model with top-2 margins of 0.08 that alone changed
    // a 300-token prompt's continuation (AVX2, Q5_K_M, with the int8 kernels already equal to their references bit for bit).
    [Theory]
    [InlineData(QuantizationType.Q8_0)]
    [InlineData(QuantizationType.Q4_K_M)]
    [InlineData(QuantizationType.Q5_K_M)]
    [InlineData(QuantizationType.Q5_0)]
    [InlineData(QuantizationType.Q3_K_M)]
    [InlineData(QuantizationType.Q2_K)]
    public async Task GreedyContinuationsEqualThoseOfTheScalarReferenceKernels(QuantizationType type)
    {
        string path = files.PathOf(type);
        foreach (string name in new[] { "prompt_7", "prompt_300" })
        {
            string prompt = tiny.Model.Tokenizer.Decode(tiny.Cases[name].PromptIds);
            string scalar = await GreedyInChildAsync(path, prompt, KernelPath.Scalar.ToString());
            string best = await GreedyInChildAsync(path, prompt, KernelPaths.Default.ToString());
            output.WriteLine($"{type} {name} on {KernelPaths.Default}: {best.Length} characters, equal to scalar: {best == scalar}");
            best.Should().Be(scalar, $"{type} {name}: the int8 kernels ({KernelPaths.Default}) decode as the scalar references do");
        }
    }

    /// <summary>
    /// The Q8_0 file loaded with <see cref="Qwen3ModelOptions.PackedWeights"/> (its Q8_0 matrices kept unpacked, read by
    /// the prompt tile) gives the same logits bit for bit as loaded without, for each golden prompt and its greedy steps;
    /// and so do three of them decoding at once, whose steps batch their tokens.
    /// </summary>
    [Fact]
    public async Task Q8_0_with_packed_weights_gives_the_same_logits_alone_and_batched()
    {
        string path = files.PathOf(QuantizationType.Q8_0);
        using var plain = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 2 });
        using var packed = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 2, PackedWeights = true });
        KeepsPanels(packed).Should().Be(KernelPaths.Quantized is KernelPath.Avx512 or KernelPath.Avx2, "Q8_0 matrices are kept where the int8 tile runs");
        string[] names = ["prompt_7", "prompt_300", "single_token"];
        var expected = names.Select(name => Run(plain, tiny.Cases[name].PromptIds)).ToArray();
        var together = await Task.WhenAll(names.Select(name => Task.Run(() => Run(packed, tiny.Cases[name].PromptIds))));
        for (int i = 0; i < names.Length; i++)
        {
            together[i].Should().HaveCount(expected[i].Count);
            for (int step = 0; step < expected[i].Count; step++)
            {
                together[i][step].Should().Equal(expected[i][step], $"{names[i]} step {step} (0: the prompt's last token)");
            }
        }

        static unsafe bool KeepsPanels(Qwen3Model model) => model.Weights.Layers[0].QProj.Panels != null;

        static List<float[]> Run(Qwen3Model model, int[] prompt)
        {
            using var context = model.CreateContext();
            var steps = new List<float[]> { context.Evaluate(prompt).ToArray() };
            for (int i = 0; i < 12; i++)
            {
                steps.Add(context.Evaluate([ArgMax(steps[^1])]).ToArray());
            }

            return steps;
        }
    }

    // Measured here (AVX-512) over the 10 golden positions, as mean KL divergence from the float64 goldens and the share
    // of positions whose top token agrees: the BF16 folder 1.1e-11 and 100%; Q8_0 0.028 and 80%; Q5_K_M 0.034 and 90%
    // (mostly Q8_0: its 96-wide rows fall back to it); Q5_0 0.27 and 50%; Q4_K_M 0.35 and 40% (mostly Q5_0, its
    // fallback). The tiny model's random weights and 96-wide rows make this far noisier than on a trained model (its
    // top-2 margins go down to 0.08): the bounds are about twice the measured KL, a position less in top-1.
    [Theory]
    [InlineData(QuantizationType.Q8_0, 0.06, 0.7)]
    [InlineData(QuantizationType.Q5_K_M, 0.07, 0.8)]
    [InlineData(QuantizationType.Q5_0, 0.55, 0.4)]
    [InlineData(QuantizationType.Q4_K_M, 0.7, 0.3)]
    [InlineData(QuantizationType.Q3_K_M, 1.3, 0.3)]
    [InlineData(QuantizationType.Q2_K, 2.0, 0.1)]
    public void LogitsStayCloseToTheFloat64Goldens(QuantizationType type, double maxMeanKl, double minTop1)
    {
        (double baselineKl, double baselineTop1) = CompareWithGoldens(tiny.Model);
        using var model = Qwen3Model.Load(files.PathOf(type), new Qwen3ModelOptions { ThreadCount = 2 });
        (double meanKl, double top1) = CompareWithGoldens(model);

        output.WriteLine($"{type}: mean KL {meanKl:G3}, same top token {top1:P0}; the BF16 folder: {baselineKl:G3}, {baselineTop1:P0}");
        meanKl.Should().BeGreaterThan(baselineKl, "the weights really were quantized").And.BeLessThan(maxMeanKl);
        top1.Should().BeGreaterThanOrEqualTo(minTop1);
    }

    /// <summary>Mean KL divergence from the goldens and the share of same top tokens, over every golden logit position.</summary>
    private (double MeanKl, double Top1) CompareWithGoldens(Qwen3Model model)
    {
        int vocab = model.Config.VocabSize;
        var kls = new List<double>();
        int sameTop = 0;
        foreach (GoldenCase golden in tiny.Cases.Values)
        {
            float[] stored = TinyModel.ReadFloats(golden.LogitsFile);
            using var context = model.CreateContext();
            int done = 0;
            for (int row = 0; row < golden.LogitPositions.Length; row++)
            {
                int position = golden.LogitPositions[row];
                float[] logits = context.Evaluate(golden.PromptIds.AsSpan(done, position + 1 - done)).ToArray();
                done = position + 1;
                ReadOnlySpan<float> expected = stored.AsSpan(row * vocab, vocab);
                kls.Add(KlDivergence(expected, logits));
                sameTop += ArgMax(expected) == ArgMax(logits) ? 1 : 0;
            }
        }

        kls.Should().HaveCount(10, "the goldens hold logits at 10 positions");
        return (kls.Average(), (double)sameTop / kls.Count);
    }

    [Fact]
    public void TheFileAloneCarriesTheTokenizerAndTemplate()
    {
        using var temp = new TempFolder();
        string alone = temp.File("alone.gguf");
        File.Copy(files.PathOf(QuantizationType.Q4_K_M), alone);

        using var model = Qwen3Model.Load(alone, new Qwen3ModelOptions { ThreadCount = 1 });
        const string text = "Quantized <|im_start|> 汉字 tokens";
        model.Tokenizer.Encode(text).ToArray().Should().Equal(tiny.Model.Tokenizer.Encode(text).ToArray());
        using GgufFile file = GgufFile.Open(alone);
        file.GetString(Qwen3Gguf.ChatTemplateKey).Should().Contain("<|im_start|>");
    }

    [Fact]
    public async Task CancellationLeavesNoFileAndKeepsAnOldOne()
    {
        using var temp = new TempFolder();
        string path = temp.Write("out.gguf", "old");
        using var cancel = new CancellationTokenSource();
        var seen = new List<string>();
        var progress = new SynchronousProgress(p =>
        {
            seen.Add(p.TensorName);
            cancel.Cancel();
        });

        Func<Task> run = () => Qwen3Quantizer.QuantizeAsync(Fixtures.TinyModelFolder, path, QuantizationType.Q4_K_M, progress, cancel.Token);

        await run.Should().ThrowAsync<OperationCanceledException>();
        seen.Should().Equal("output_norm.weight");
        File.ReadAllText(path).Should().Be("old");
        Directory.GetFiles(temp.Path).Should().Equal(path);
    }

    [Fact]
    public async Task ANaNWeightIsRejectedNamingTheTensor()
    {
        using var temp = new TempFolder();
        string folder = Path.Combine(temp.Path, "model");
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(Fixtures.TinyModelFolder))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        const string tensor = "model.layers.1.mlp.up_proj.weight";
        byte[] weights = File.ReadAllBytes(Path.Combine(folder, "model.safetensors"));
        long start = SafetensorsDataStart(weights, tensor);
        BinaryPrimitives.WriteUInt16LittleEndian(weights.AsSpan((int)start + 2 * 1000), 0x7FC0); // BF16 NaN
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), weights);
        string output = temp.File("out.gguf");

        Func<Task> run = () => Qwen3Quantizer.QuantizeAsync(folder, output, QuantizationType.Q8_0);

        (await run.Should().ThrowAsync<ModelLoadException>())
            .Which.TensorName.Should().Be("blk.1.ffn_up.weight");
        Directory.GetFiles(temp.Path).Should().BeEmpty();
    }

    [Fact]
    public async Task TheToolCommandWritesTheFileAndRejectsAnUnknownType()
    {
        using var temp = new TempFolder();
        string path = temp.File("tool.gguf");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int code = await ToolCommands.QuantizeAsync([Fixtures.TinyModelFolder, path, "--type", "q6_k"], stdout, stderr, interactive: false);

        code.Should().Be(0, stderr.ToString());
        stdout.ToString().Trim().Should().Be(Path.GetFullPath(path));
        stderr.ToString().Should().Contain("blk.1.ffn_down.weight Q6_K");
        using (GgufFile file = GgufFile.Open(path))
        {
            file.GetInteger("general.file_type").Should().Be(18);
        }

        stderr = new StringWriter();
        (await ToolCommands.QuantizeAsync([Fixtures.TinyModelFolder, temp.File("x.gguf"), "--type", "Q3_K"], stdout, stderr, interactive: false)).Should().Be(2);
        stderr.ToString().Should().Contain("Q4_K_M");
        (await ToolCommands.QuantizeAsync([Fixtures.TinyModelFolder], stdout, new StringWriter(), interactive: false)).Should().Be(2);
        (await ToolCommands.QuantizeAsync([temp.File("missing"), temp.File("y.gguf")], stdout, new StringWriter(), interactive: false)).Should().Be(1);
        File.Exists(temp.File("x.gguf")).Should().BeFalse();
    }

    private static string Type(QuantizationType type, string name, int[] shape, bool tied = true, int layers = 28, int queryGroupSize = 2) =>
        Qwen3GgufQuantizer.TensorType(type, name, shape, layers, queryGroupSize, tied).ToString();

    /// <summary>KL(P‖Q) of the softmaxes, in nats, as llama-perplexity's --kl-divergence reports it (P the reference).</summary>
    private static double KlDivergence(ReadOnlySpan<float> reference, ReadOnlySpan<float> logits)
    {
        double[] p = LogSoftmax(reference), q = LogSoftmax(logits);
        double kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            kl += Math.Exp(p[i]) * (p[i] - q[i]);
        }

        return kl;
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits)
        {
            max = Math.Max(max, v);
        }

        double sum = 0;
        foreach (float v in logits)
        {
            sum += Math.Exp(v - max);
        }

        double log = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++)
        {
            result[i] = logits[i] - log;
        }

        return result;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            best = values[i] > values[best] ? i : best;
        }

        return best;
    }

    /// <summary>
    /// The greedy continuation printed by the tool's <c>bench</c> command, run with QWEN3NET_QUANTIZED_KERNELS=<paramref name="kernels"/>
    /// and every other kernel on <see cref="KernelPaths.Default"/>.
    /// </summary>
    private static async Task<string> GreedyInChildAsync(string model, string prompt, string kernels)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "Qwen3.Chat.dll"), "bench", model, "--prompt", prompt, "--max-tokens", "24", "--threads", "2" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment[KernelPaths.EnvironmentVariable] = KernelPaths.Default.ToString();
        start.Environment[KernelPaths.QuantizedEnvironmentVariable] = kernels;
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, await stderr);

        // The first line reports the load and its time, the last the speed; the continuation is between them.
        string[] lines = (await stdout).Split('\n');
        lines[0].Should().StartWith("Loading ").And.Contain("done");
        lines[^2].Should().Contain("24 generated", "a random model hardly ever stops before the limit");
        string text = string.Join('\n', lines[1..^2]);
        text.Should().StartWith(prompt).And.NotBe(prompt);
        return text;
    }

    // safetensors: u64 header length, a JSON header of {name: {data_offsets: [begin, end]}}, then the data.
    private static long SafetensorsDataStart(byte[] file, string tensor)
    {
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        using var header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        return 8 + headerLength + header.RootElement.GetProperty(tensor).GetProperty("data_offsets")[0].GetInt64();
    }

    private sealed class SynchronousProgress(Action<QuantizationProgress> report) : IProgress<QuantizationProgress>
    {
        public void Report(QuantizationProgress value) => report(value);
    }
}
