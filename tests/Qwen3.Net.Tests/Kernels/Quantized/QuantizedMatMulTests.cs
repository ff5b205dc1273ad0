using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Kernels.Quantized;

public sealed class QuantizedMatMulTests : IDisposable
{
    // Short, whole and whole-plus-short panels of the prompt path (32 rows).
    private static readonly int[] Rows = [1, 3, 17, 32, 33];

    // Decode groups (1-4 tokens, and for the K formats up to 11 in groups of four) and prompt tiles (from 5 on, from 12
    // for the K formats), ending in every remainder of a tile of four.
    private static readonly int[] Tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    // More than a token block of the prompt path (64), ending in a group of four and singles.
    private const int PromptTokens = 71;

    // Two whole panels of the prompt path and a short one.
    private const int PromptRows = 70;

    // Three threads on any machine: several chunks per matrix, so the row split itself is exercised.
    private readonly WorkerPool _pool = new(3);

    public void Dispose() => _pool.Dispose();

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512EqualsScalarBitForBit() => EqualsScalarOnAwkwardShapes(KernelPath.Avx512, vnni: false);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2EqualsScalarBitForBit() => EqualsScalarOnAwkwardShapes(KernelPath.Avx2, vnni: false);

    [VnniFact(nameof(KernelPath.Avx2))]
    public void Avx2VnniEqualsScalarBitForBit() => EqualsScalarOnAwkwardShapes(KernelPath.Avx2, vnni: true);

    // AVX-512 decodes Q8_0, Q4_0 and Q5_0 with the 256-bit AVX-VNNI kernels (and everything else as without them).
    [VnniFact(nameof(KernelPath.Avx512))]
    public void Avx512VnniEqualsScalarBitForBit() => EqualsScalarOnAwkwardShapes(KernelPath.Avx512, vnni: true);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableEqualsScalarBitForBit() => EqualsScalarOnAwkwardShapes(KernelPath.Portable, vnni: false);

    // The prompt tile sums byte products in shorts over several steps (K formats) and stores Q8_0/Q4_0/Q5_0 quants biased by
    // 128 for VNNI: quants and activations at their largest magnitudes, of one sign and the other, reach the bounds
    // those sums are sized for, on every width the tile has.
    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void PromptTileIsExactAtTheLargestQuants()
    {
        var paths = new List<(KernelPath Path, bool Vnni)> { (KernelPath.Avx2, false) };
        if (KernelPaths.IsSupported(KernelPath.Avx512))
        {
            paths.Add((KernelPath.Avx512, false));
        }

        if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
        {
            paths.Add((KernelPath.Avx2, true));
            paths.AddRange(KernelPaths.IsSupported(KernelPath.Avx512) ? [(KernelPath.Avx512, true)] : []);
        }

        const int rows = 33, tokens = 9;
        foreach (GgmlType type in QuantizedFixtures.WeightTypes)
        {
            int columns = GgmlTypes.BlockSize(type) == 32 ? 416 : 768;
            foreach (byte fill in (byte[])[0xFF, 0x80, 0x7F, 0x00])
            {
                var weights = new QuantizedTestMatrix(type, rows, columns, seed: fill, fill: fill);
                foreach (float sign in (float[])[1, -1])
                {
                    float[] x = new float[tokens * columns];
                    for (int i = 0; i < x.Length; i++)
                    {
                        x[i] = sign * (i / columns + 1); // every quant of a token ±127
                    }

                    var expected = new float[tokens * rows];
                    QuantizedMatMul.MultiplyScalar(weights.Matrix, x, expected, tokens);
                    foreach ((KernelPath path, bool vnni) in paths)
                    {
                        var actual = new float[tokens * rows];
                        QuantizedMatMul.RowsOnOneThread(weights.Matrix, x, actual, tokens, path, vnni);
                        ShouldBeIdentical(actual, expected, $"{type} of bytes 0x{fill:X2} {path}{(vnni ? " VNNI" : "")}, activations of sign {sign}");
                    }
                }
            }
        }
    }

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512PooledProductsMatchScalar() => PooledProductsMatchScalar(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2PooledProductsMatchScalar() => PooledProductsMatchScalar(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortablePooledProductsMatchScalar() => PooledProductsMatchScalar(KernelPath.Portable);

    [Fact]
    public void ATokensResultDoesNotDependOnItsBatchOrTheThreadSplit()
    {
        const int rows = 45, columns = 512, tokens = 70; // more than a token block, and a group of four plus singles
        using var one = new WorkerPool(1);
        foreach (GgmlType type in QuantizedFixtures.WeightTypes)
        {
            var weights = new QuantizedTestMatrix(type, rows, columns, seed: (int)type);
            float[] x = RandomVector(tokens * columns, seed: 3);
            var batched = new float[tokens * rows];
            QuantizedMatMul.Multiply(_pool, weights.Matrix, x, batched, tokens);
            for (int t = 0; t < tokens; t += 13)
            {
                // Decoding: a token alone and first in a group of four that share each weight load.
                var alone = new float[rows];
                QuantizedMatMul.Multiply(one, weights.Matrix, x.AsSpan(t * columns, columns), alone, 1);
                var group = new float[4 * rows];
                QuantizedMatMul.Multiply(one, weights.Matrix, x.AsSpan(Math.Min(t, tokens - 4) * columns, 4 * columns), group, 4);
                group.AsSpan((t - Math.Min(t, tokens - 4)) * rows, rows).ToArray().Should().Equal(alone, $"{type}: token {t} sums in the same order alone as in a group of four");

                // A prompt: the same token at another place of a shorter prompt, on one thread.
                int start = Math.Max(0, Math.Min(t - 2, tokens - 7));
                var prompt = new float[7 * rows];
                QuantizedMatMul.Multiply(one, weights.Matrix, x.AsSpan(start * columns, 7 * columns), prompt, 7);
                prompt.AsSpan((t - start) * rows, rows).ToArray().Should().Equal(
                    batched.AsSpan(t * rows, rows).ToArray(), $"{type}: token {t} sums in the same order in any prompt, on any thread");
            }
        }
    }

    [Fact]
    public void RejectsBadShapes()
    {
        var weights = new QuantizedTestMatrix(GgmlType.Q8_0, 4, 64, seed: 1);
        var act = () => QuantizedMatMul.Multiply(_pool, weights.Matrix, new float[127], new float[8], 2);
        act.Should().Throw<ArgumentException>();
        var columns = () => GgmlTypes.RowBytes(GgmlType.Q4_K, 300);
        columns.Should().Throw<ArgumentException>().WithMessage("*300*");
        var type = () => GgmlTypes.RowBytes((GgmlType)99, 256);
        type.Should().Throw<ArgumentOutOfRangeException>();
    }

    // Tokens 1-4 go through the decode kernel (a group of four or singles), 5 and more through the prompt tile on
    // AVX-512 and AVX2; every matrix-vector and tile output must be the scalar reference's float, bit for bit, so that
    // greedy decoding cannot tell the kernels apart. Every other matrix and input has extreme scales and magnitudes.
    private static void EqualsScalarOnAwkwardShapes(KernelPath path, bool vnni)
    {
        int seed = 0;
        foreach (GgmlType type in QuantizedFixtures.WeightTypes)
        {
            // Counts of blocks (super-blocks for the K formats) leaving each remainder 0-7 past the kernels' groups of eight (Q8_0, Q4_0, Q5_0) or 0-3 past groups of four, and nine super-blocks (two groups and one left).
            int[] columns = GgmlTypes.BlockSize(type) == 32 ? [32, 64, 96, 160, 192, 224, 256, 352, 384, 416, 512] : [256, 768, 1024, 1280, 1536, 2304];
            foreach (int c in columns)
            {
                foreach (int rows in Rows)
                {
                    bool extreme = ++seed % 2 == 0;
                    var weights = new QuantizedTestMatrix(type, rows, c, seed, extreme);
                    foreach (int tokens in Tokens)
                    {
                        float[] x = extreme ? ExtremeVector(tokens * c, ++seed) : RandomVector(tokens * c, ++seed);
                        var expected = new float[tokens * rows];
                        var actual = new float[tokens * rows];
                        QuantizedMatMul.MultiplyScalar(weights.Matrix, x, expected, tokens);
                        QuantizedMatMul.RowsOnOneThread(weights.Matrix, x, actual, tokens, path, vnni);
                        ShouldBeIdentical(actual, expected, $"{type} {path}{(vnni ? " VNNI" : "")} [{rows}, {c}] × {tokens} tokens{(extreme ? ", extreme scales" : "")}");
                    }
                }
            }

            var prompt = new QuantizedTestMatrix(type, PromptRows, columns[^1], ++seed);
            float[] px = RandomVector(PromptTokens * columns[^1], ++seed);
            var want = new float[PromptTokens * PromptRows];
            var got = new float[PromptTokens * PromptRows];
            QuantizedMatMul.MultiplyScalar(prompt.Matrix, px, want, PromptTokens);
            QuantizedMatMul.RowsOnOneThread(prompt.Matrix, px, got, PromptTokens, path, vnni);
            ShouldBeIdentical(got, want, $"{type} {path}{(vnni ? " VNNI" : "")} [{PromptRows}, {columns[^1]}] × {PromptTokens} tokens");
        }
    }

    // One, three and (for the K formats) six tokens go through the decode kernels (the 512-bit Q4_K and Q5_K loop with
    // its own activation order), six (Q8_0) and thirteen through the prompt tile.
    private void PooledProductsMatchScalar(KernelPath path)
    {
        foreach (int tokens in (int[])[1, 3, 6, 13])
        {
            PooledProductsMatchScalar(path, tokens);
        }
    }

    private void PooledProductsMatchScalar(KernelPath path, int tokens)
    {
        const int columns = 512;
        float[] x = RandomVector(tokens * columns, seed: 11);
        var q = new QuantizedTestMatrix(GgmlType.Q4_K, 70, columns, seed: 12);
        var k = new QuantizedTestMatrix(GgmlType.Q8_0, 33, columns, seed: 13);
        var v = new QuantizedTestMatrix(GgmlType.Q6_K, 17, columns, seed: 14);
        float[] yq = new float[tokens * 70], yk = new float[tokens * 33], yv = new float[tokens * 17];
        QuantizedMatMul.Multiply(_pool, x, tokens, q.Matrix, yq, k.Matrix, yk, v.Matrix, yv, path);
        foreach ((QuantizedTestMatrix w, float[] y) in new[] { (q, yq), (k, yk), (v, yv) })
        {
            var expected = new float[y.Length];
            QuantizedMatMul.MultiplyScalar(w.Matrix, x, expected, tokens);
            ShouldBeIdentical(y, expected, $"fused {w.Matrix.Type} on {path}, {tokens} tokens");
        }

        var gate = new QuantizedTestMatrix(GgmlType.Q5_K, 50, columns, seed: 15);
        var up = new QuantizedTestMatrix(GgmlType.Q5_K, 50, columns, seed: 16);
        float[] h = new float[tokens * 50], upScratch = new float[tokens * 50];
        QuantizedMatMul.MultiplySwiGlu(_pool, gate.Matrix, up.Matrix, x, h, upScratch, tokens, path);
        float[] g = new float[tokens * 50], u = new float[tokens * 50];
        QuantizedMatMul.MultiplyScalar(gate.Matrix, x, g, tokens);
        QuantizedMatMul.MultiplyScalar(up.Matrix, x, u, tokens);
        ShouldBeIdentical(upScratch, u, $"up on {path}, {tokens} tokens");
        SwiGlu.ApplyScalar(g, u);
        for (int i = 0; i < h.Length; i++)
        {
            h[i].Should().BeApproximately(g[i], 1e-3f * (1 + Math.Abs(g[i])), $"silu(gate)·up [{i}] on {path}");
        }

        var single = new float[tokens * 70];
        QuantizedMatMul.Multiply(_pool, q.Matrix, x, single, tokens, path);
        single.Should().Equal(yq, "a product alone equals the same product fused with others");
    }

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512KeptQ8_0PanelsEqualScalarBitForBit() => KeptQ8_0PanelsEqualScalar(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2KeptQ8_0PanelsEqualScalarBitForBit() => KeptQ8_0PanelsEqualScalar(KernelPath.Avx2);

    /// <summary>
    /// Q8_0 panels kept at load (<see cref="QuantizedMatMul.PackPanels"/>, one panel per call) give the reference's
    /// products bit for bit from two tokens on, where they take the prompt tile, alone, fused and with SwiGLU, over
    /// short and whole panels; and they are what the tile reads (another matrix's panels give that matrix's products).
    /// On the portable path, which has no tile, they are not read.
    /// </summary>
    private unsafe void KeptQ8_0PanelsEqualScalar(KernelPath path)
    {
        const int rows = PromptRows, columns = 544;
        var gate = new QuantizedTestMatrix(GgmlType.Q8_0, rows, columns, seed: 30);
        var up = new QuantizedTestMatrix(GgmlType.Q8_0, rows, columns, seed: 31);
        long bytes = QuantizedMatMul.PanelBytes(gate.Matrix);
        byte* gatePanels = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        byte* upPanels = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            for (int p = 0; p < QuantizedMatMul.PanelCount(gate.Matrix); p++)
            {
                QuantizedMatMul.PackPanels(gate.Matrix, gatePanels, p, p + 1);
                QuantizedMatMul.PackPanels(up.Matrix, upPanels, p, p + 1);
            }

            var keptGate = gate.Matrix.WithPanels(gatePanels);
            var keptUp = up.Matrix.WithPanels(upPanels);
            foreach (int tokens in Tokens)
            {
                float[] x = RandomVector(tokens * columns, seed: 32 + tokens);
                float[] expected = new float[tokens * rows], expectedUp = new float[tokens * rows];
                QuantizedMatMul.MultiplyScalar(gate.Matrix, x, expected, tokens);
                QuantizedMatMul.MultiplyScalar(up.Matrix, x, expectedUp, tokens);

                float[] y = new float[expected.Length];
                QuantizedMatMul.Multiply(_pool, keptGate, x, y, tokens, path);
                ShouldBeIdentical(y, expected, $"kept panels on {path}, {tokens} tokens");
                QuantizedMatMul.Multiply(_pool, gate.Matrix.WithPanels(upPanels), x, y, tokens, path);
                ShouldBeIdentical(y, tokens >= QuantizedMatMul.KeptPanelMinTokens ? expectedUp : expected, $"{path}, {tokens} tokens: the tile reads the kept panels, the matrix-vector kernel the map");

                float[] y0 = new float[expected.Length], y1 = new float[expected.Length], y2 = new float[expected.Length];
                QuantizedMatMul.Multiply(_pool, x, tokens, keptGate, y0, keptUp, y1, gate.Matrix, y2, path);
                ShouldBeIdentical(y0, expected, $"fused, kept, {path}, {tokens} tokens");
                ShouldBeIdentical(y1, expectedUp, $"fused, kept, {path}, {tokens} tokens");
                ShouldBeIdentical(y2, expected, $"fused beside kept ones, from the map, {path}, {tokens} tokens");

                float[] h = new float[expected.Length], upScratch = new float[expected.Length];
                QuantizedMatMul.MultiplySwiGlu(_pool, keptGate, keptUp, x, h, upScratch, tokens, path);
                ShouldBeIdentical(upScratch, expectedUp, $"SwiGLU's up, kept, {path}, {tokens} tokens");
                float[] activated = (float[])expected.Clone();
                for (int t = 0; t < tokens; t++)
                {
                    SwiGlu.Apply(activated.AsSpan(t * rows, rows), expectedUp.AsSpan(t * rows, rows));
                }

                ShouldBeIdentical(h, activated, $"SwiGLU, kept, {path}, {tokens} tokens");

                QuantizedMatMul.Multiply(_pool, gate.Matrix.WithPanels(upPanels), x, y, tokens, KernelPath.Portable);
                ShouldBeIdentical(y, expected, $"portable, {tokens} tokens: no tile, so the map");
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(gatePanels);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(upPanels);
        }
    }

    /// <summary>The same float bits at every output, but that any NaN equals any NaN (a NaN's payload depends on operand order).</summary>
    private static void ShouldBeIdentical(float[] actual, float[] expected, string because)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = BitConverter.SingleToInt32Bits(actual[i]) == BitConverter.SingleToInt32Bits(expected[i]) || (float.IsNaN(actual[i]) && float.IsNaN(expected[i]));
            same.Should().BeTrue($"{because}, output {i}: {actual[i]:R} vs the reference's {expected[i]:R}");
        }
    }

    private static float[] RandomVector(int length, int seed)
    {
        var random = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1) * (i % 37 == 0 ? 20 : 1);
        }

        return x;
    }

    /// <summary>Blocks of 32 values at magnitudes from 0 to 1e30, so activation scales go from zero to f16 infinity.</summary>
    private static float[] ExtremeVector(int length, int seed)
    {
        float[] magnitudes = [0, 1e-30f, 1e-3f, 1, 20, 1e4f, 1e30f];
        var random = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i += 32)
        {
            float magnitude = random.Next(4) == 0 ? magnitudes[random.Next(magnitudes.Length)] : 1;
            for (int j = i; j < i + 32; j++)
            {
                x[j] = (float)(random.NextDouble() * 2 - 1) * magnitude;
            }
        }

        return x;
    }
}

/// <summary>A test of the AVX-VNNI kernels of one path, reported as skipped on a CPU without them.</summary>
public sealed class VnniFactAttribute : FactAttribute
{
    public VnniFactAttribute(string path)
    {
        if (!System.Runtime.Intrinsics.X86.AvxVnni.IsSupported || !KernelPaths.IsSupported(Enum.Parse<KernelPath>(path)))
        {
            Skip = $"This CPU (or DOTNET_Enable* settings) lacks AVX-VNNI or {path}.";
        }
    }
}
