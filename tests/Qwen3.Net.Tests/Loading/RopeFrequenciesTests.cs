using System.Text.Json;
using Qwen3.Net.Model;

namespace Qwen3.Net.Tests.Loading;

public sealed class RopeFrequenciesTests
{
    static Qwen3Config Config(int headDim, double theta, RopeScaling? scaling) => new()
    {
        Architecture = "Qwen3ForCausalLM",
        HiddenSize = 1024,
        IntermediateSize = 3072,
        NumHiddenLayers = 1,
        NumAttentionHeads = 16,
        NumKeyValueHeads = 8,
        HeadDim = headDim,
        VocabSize = 10,
        TieWordEmbeddings = true,
        RopeTheta = theta,
        RmsNormEps = 1e-6,
        MaxPositionEmbeddings = 131072,
        RopeScaling = scaling,
        EosTokenIds = [],
    };

    [Fact]
    public void PlainFrequenciesMatchTheGoldenReference()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.TinyModelFolder, "golden", "golden.json")));
        JsonElement rope = golden.RootElement.GetProperty("rope");
        double[] expected = rope.GetProperty("inv_freq").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Qwen3Config c = Qwen3Config.Load(Fixtures.TinyModelFolder);

        double[] actual = RopeFrequencies.InverseFrequencies(c);

        actual.Should().HaveCount(expected.Length);
        for (int i = 0; i < expected.Length; i++)
            actual[i].Should().BeApproximately(expected[i], 1e-15 * Math.Max(1, expected[i]) + expected[i] * 1e-14, $"inv_freq[{i}]");
        RopeFrequencies.AttentionScaling(c).Should().Be(rope.GetProperty("attention_scaling").GetDouble());
    }

    // Produced with python3 (float64) following transformers' _compute_yarn_parameters step by step:
    //   dim=128, base=1e6, factor=4, original_max_position_embeddings=32768, beta_fast=32, beta_slow=1, truncate=True
    //   find_correction_dim(r) = dim*ln(orig/(r*2π)) / (2 ln base) → 23.596 (beta_fast), 39.651 (beta_slow)
    //   low, high = max(floor(23.596), 0), min(ceil(39.651), dim-1) = 23, 40
    //   ramp_i = clamp((i-low)/(high-low), 0, 1); w_i = 1 - ramp_i
    //   inv_i = (1/(factor·base^(2i/dim)))·(1-w_i) + (1/base^(2i/dim))·w_i
    static readonly double[] YarnExpected =
    [
        1.0, 0.8058421877614819, 0.6493816315762113, 0.5232991146814947, 0.4216965034285823, 0.3398208328942559,
        0.27384196342643613, 0.220673406908459, 0.17782794100389226, 0.14330125702369628, 0.1154781984689458,
        0.0930572040929699, 0.07498942093324558, 0.06042963902381328, 0.04869675251658631, 0.03924189758484536,
        0.03162277660168379, 0.025482967479793464, 0.020535250264571463, 0.016548170999431816, 0.01333521432163324,
        0.010746078283213174, 0.008659643233600653, 0.006978305848598663, 0.005375321490790102, 0.004131738022518394,
        0.003168422574711092, 0.0024234223804076435, 0.001848276564706878, 0.0014051124815959123, 0.0010643609812470017,
        0.0008029597275452302, 0.0006029411764705882, 0.00045032357551376927, 0.00033424054566422634,
        0.0002462584069089387, 0.00017984115587395423, 0.00012993149493015669, 9.262301704129459e-05,
        6.490394320837028e-05, 4.445698525097307e-05, 3.582531425592407e-05, 2.8869549617236455e-05,
        2.3264301023242475e-05, 1.8747355233311396e-05, 1.5107409755953319e-05, 1.2174188129146578e-05,
        9.810474396211341e-06, 7.905694150420949e-06, 6.370741869948367e-06, 5.133812566142866e-06,
        4.137042749857953e-06, 3.33380358040831e-06, 2.6865195708032935e-06, 2.1649108084001634e-06,
        1.744576462149666e-06, 1.4058533129758728e-06, 1.1328959094002045e-06, 9.129353181370943e-07,
        7.356817940523205e-07, 5.928434264154138e-07, 4.777382437426101e-07, 3.84981631514873e-07,
        3.102344401879299e-07,
    ];

    [Fact]
    public void YarnFrequenciesMatchAnIndependentComputation()
    {
        var c = Config(128, 1e6, new RopeScaling { RopeType = "yarn", Factor = 4, OriginalMaxPositionEmbeddings = 32768 });

        double[] actual = RopeFrequencies.InverseFrequencies(c);

        actual.Should().HaveCount(64);
        for (int i = 0; i < 64; i++)
            actual[i].Should().BeApproximately(YarnExpected[i], YarnExpected[i] * 1e-12, $"inv_freq[{i}]");
        // Below low (23) the frequency is untouched; above high (40) it is divided by the factor.
        actual[5].Should().BeApproximately(Math.Pow(1e6, -10.0 / 128), 1e-15);
        actual[50].Should().BeApproximately(Math.Pow(1e6, -100.0 / 128) / 4, 1e-18);
        // python: 0.1*ln(4)+1
        RopeFrequencies.AttentionScaling(c).Should().BeApproximately(1.138629436111989, 1e-15);
    }

    [Fact]
    public void YarnWithoutTruncationUsesTheFractionalRange()
    {
        var c = Config(128, 1e6, new RopeScaling { RopeType = "yarn", Factor = 4, OriginalMaxPositionEmbeddings = 32768, Truncate = false });

        double[] actual = RopeFrequencies.InverseFrequencies(c);

        // python3 (same formula, low/high not rounded: 23.5959…, 39.6508…): inv_freq[30] = 0.0010792377416765538,
        // while the truncated range gives 0.0010643609812470017.
        actual[30].Should().BeApproximately(0.0010792377416765538, 1e-15);
        actual[20].Should().BeApproximately(YarnExpected[20], 1e-16);
        actual[41].Should().BeApproximately(YarnExpected[41], 1e-17);
    }

    [Fact]
    public void ExplicitAttentionFactorWins()
    {
        var c = Config(128, 1e6, new RopeScaling { RopeType = "yarn", Factor = 4, OriginalMaxPositionEmbeddings = 32768, AttentionFactor = 1.25 });
        RopeFrequencies.AttentionScaling(c).Should().Be(1.25);
        RopeFrequencies.AttentionScaling(Config(128, 1e6, null)).Should().Be(1.0);
    }
}
