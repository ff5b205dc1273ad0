using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Kernels;

public sealed class MatMulTests : IDisposable
{
    private static readonly int[] Columns = [1, 3, 17, 31, 33, 100, 257, 1000];
    private static readonly int[] Rows = [1, 3, 17, 33, 70];
    private static readonly int[] Tokens = [1, 2, 3, 4, 5, 7, 8, 9, 17, 130];

    // The block formats have kernels of their own (Quantized/QuantizedMatMulTests).
    private static readonly TensorDType[] PlainTypes = [TensorDType.F32, TensorDType.F16, TensorDType.BF16];

    // Three threads on any machine: several chunks per matrix, so the row split itself is exercised.
    private readonly WorkerPool _pool = new(3);

    public void Dispose() => _pool.Dispose();

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512MatchesScalar() => MatchesScalarOnAwkwardShapes(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2MatchesScalar() => MatchesScalarOnAwkwardShapes(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableMatchesScalar() => MatchesScalarOnAwkwardShapes(KernelPath.Portable);

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512FusedProductsMatchScalar() => FusedProductsMatchScalar(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2FusedProductsMatchScalar() => FusedProductsMatchScalar(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableFusedProductsMatchScalar() => FusedProductsMatchScalar(KernelPath.Portable);

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512MatchesScalarAcrossPanels() => MatchesScalarAcrossPanels(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2MatchesScalarAcrossPanels() => MatchesScalarAcrossPanels(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableMatchesScalarAcrossPanels() => MatchesScalarAcrossPanels(KernelPath.Portable);

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512PrefillSumsInItsStatedOrder() => PrefillSumsInItsStatedOrder(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2PrefillSumsInItsStatedOrder() => PrefillSumsInItsStatedOrder(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortablePrefillSumsInItsStatedOrder() => PrefillSumsInItsStatedOrder(KernelPath.Portable);

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512BatchedDecodeMatchesOneTokenBitForBit() => BatchedDecodeMatchesOneToken(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2BatchedDecodeMatchesOneTokenBitForBit() => BatchedDecodeMatchesOneToken(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableBatchedDecodeMatchesOneTokenBitForBit() => BatchedDecodeMatchesOneToken(KernelPath.Portable);

    [KernelPathFact(nameof(KernelPath.Avx512))]
    public void Avx512KeptPanelsSumInTheStatedOrderForAnyTokenCount() => KeptPanelsSumInTheStatedOrder(KernelPath.Avx512);

    [KernelPathFact(nameof(KernelPath.Avx2))]
    public void Avx2KeptPanelsSumInTheStatedOrderForAnyTokenCount() => KeptPanelsSumInTheStatedOrder(KernelPath.Avx2);

    [KernelPathFact(nameof(KernelPath.Portable))]
    public void PortableKeptPanelsSumInTheStatedOrderForAnyTokenCount() => KeptPanelsSumInTheStatedOrder(KernelPath.Portable);

    /// <summary>
    /// Panels kept in AVX-512's layout (48 rows) are not read by the 32-row tile of AVX2 and portable: those paths pack
    /// from the map as before, so a model packed for one path still multiplies right on another.
    /// </summary>
    [KernelPathFact(nameof(KernelPath.Avx512))]
    public unsafe void PanelsKeptForAnotherPathAreNotRead()
    {
        const int rows = 101, columns = 2100, tokens = 3;
        var weights = new TestWeights(TensorDType.BF16, rows, columns, seed: 90);
        float[] x = TestWeights.RandomVector(tokens * columns, seed: 91);
        long bytes = MatMul.PanelBytes(weights.Matrix, KernelPath.Avx512);
        byte* panels = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            MatMul.PackPanels(weights.Matrix, panels, 0, MatMul.PanelCount(weights.Matrix, KernelPath.Avx512), KernelPath.Avx512);
            var kept = weights.Matrix.WithPanels(panels, MatMul.PromptPanelRows(KernelPath.Avx512));
            foreach (var path in new[] { KernelPath.Avx2, KernelPath.Portable })
            {
                var expected = new float[tokens * rows];
                var actual = new float[tokens * rows];
                MatMul.Multiply(_pool, weights.Matrix, x, expected, tokens, path);
                MatMul.Multiply(_pool, kept, x, actual, tokens, path);
                actual.Should().Equal(expected, $"{path} reads the map, not panels of another layout");
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(panels);
        }
    }

    [Fact]
    public void ResultsDoNotDependOnTheThreadCount()
    {
        var weights = new TestWeights(TensorDType.BF16, 200, 300, seed: 7);
        foreach (int tokens in new[] { 1, 9 })
        {
            float[] x = TestWeights.RandomVector(tokens * 300, seed: 8);
            var single = new float[tokens * 200];
            var multi = new float[tokens * 200];
            using (var one = new WorkerPool(1))
            {
                MatMul.Multiply(one, weights.Matrix, x, single, tokens);
            }

            MatMul.Multiply(_pool, weights.Matrix, x, multi, tokens);
            multi.Should().Equal(single, $"each output is summed in the same order whichever thread computes it ({tokens} tokens)");
        }
    }

    [Fact]
    public void RejectsBuffersTooSmall()
    {
        var weights = new TestWeights(TensorDType.F32, 4, 8, seed: 1);
        var act = () => MatMul.Multiply(_pool, weights.Matrix, new float[15], new float[8], 2);
        act.Should().Throw<ArgumentException>();
    }

    /// <summary>
    /// The cursor that finds the block the batched kernel prefetches steps through a work item's row blocks in the order
    /// the kernel reads them (each group of <see cref="MatMul.BatchRows"/> rows block by block, the last block to the
    /// last column, the last group short) and gives none after the last row.
    /// </summary>
    [Fact]
    public unsafe void BlockCursorFollowsTheBatchedKernelsReadingOrder()
    {
        const int rowStart = 5, rowEnd = 5 + 2 * MatMul.BatchRows + 3, blocks = 3;
        const int columns = 2 * MatMul.BatchColumns + 117;
        var weights = new TestWeights(TensorDType.BF16, rowEnd + 4, columns, seed: 3);
        WeightMatrix w = weights.Matrix;
        var cursor = new MatMul.BlockCursor(rowStart, rowEnd);
        int visited = 0;
        for (int g0 = rowStart; g0 < rowEnd; g0 += MatMul.BatchRows)
        {
            for (int b = 0; b < blocks; b++)
            {
                for (int r = g0; r < Math.Min(g0 + MatMul.BatchRows, rowEnd); r++)
                {
                    int from = b * MatMul.BatchColumns;
                    int to = b == blocks - 1 ? columns : from + MatMul.BatchColumns;
                    nint block = (nint)cursor.Block(w, blocks, out long length);
                    block.Should().Be((nint)(w.Row(r) + (long)from * sizeof(ushort)), $"row {r}, block {b}");
                    length.Should().Be((long)(to - from) * sizeof(ushort), $"row {r}, block {b}");
                    cursor.Advance(rowEnd, blocks);
                    visited++;
                }
            }
        }

        visited.Should().Be((rowEnd - rowStart) * blocks);
        for (int past = 0; past < 3; past++)
        {
            ((nint)cursor.Block(w, blocks, out long length)).Should().Be(0, "no block lies past the last row");
            length.Should().Be(0);
            cursor.Advance(rowEnd, blocks);
        }
    }

    private void MatchesScalarOnAwkwardShapes(KernelPath path)
    {
        int seed = 0;
        foreach (TensorDType type in PlainTypes)
        {
            foreach (int columns in Columns)
            {
                foreach (int rows in Rows)
                {
                    var weights = new TestWeights(type, rows, columns, ++seed);
                    foreach (int tokens in Tokens)
                    {
                        ShouldMatchScalar(_pool, weights, tokens, ++seed, path, $"{path} {type} [{rows}, {columns}] × {tokens} tokens");
                    }
                }
            }
        }
    }

    /// <summary>
    /// One thread gets the whole matrix, so the prefill kernels go through several row panels and K blocks (AVX-512: 48
    /// rows × 2048 columns; AVX2 and portable: 32 rows × 256 columns), the last of each short, with a row length that is
    /// not a multiple of any vector width, in every weight type.
    /// </summary>
    private static void MatchesScalarAcrossPanels(KernelPath path)
    {
        const int rows = 601, columns = 2100, tokens = 13;
        using var single = new WorkerPool(1);
        int seed = 11;
        foreach (TensorDType type in PlainTypes)
        {
            var weights = new TestWeights(type, rows, columns, ++seed);
            ShouldMatchScalar(single, weights, tokens, ++seed, path, $"{path} {type} [{rows}, {columns}] × {tokens} tokens on one thread");
        }
    }

    /// <summary>
    /// The prefill kernels, bit for bit, against their stated order: per K block one multiply-add chain in k order,
    /// the blocks' sums added to y one after another; whatever panel, tile, packer or thread a row falls in. Rows and
    /// columns cross several short panels and K blocks; a change of blocking that changes the model's logits fails here.
    /// Token counts leave every short tile (1, 2, 3–4 and 5 or more tokens past the last whole tile, with 8- and
    /// 6-token tiles), with and without the next panel's prefetch (up to 16 tokens).
    /// </summary>
    private void PrefillSumsInItsStatedOrder(KernelPath path)
    {
        const int rows = 101;
        int seed = 40;
        // An even column count packs BF16 in pairs, an odd one (the last K block odd too) widened one column at a time.
        foreach (int columns in new[] { 2100, 2101 })
        foreach (int tokens in new[] { 5, 9, 10, 11, 12, 13, 21 })
        foreach (TensorDType type in PlainTypes)
        {
            var weights = new TestWeights(type, rows, columns, ++seed);
            float[] x = TestWeights.RandomVector(tokens * columns, ++seed);
            float[] expected = SumsInThePromptTilesOrder(weights.Matrix, x, tokens, path);
            float[] actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
            MatMul.Multiply(_pool, weights.Matrix, x, actual, tokens, path);
            actual.Should().Equal(expected, $"{path} {type} {columns} columns × {tokens} tokens: every output is the same chain of multiply-adds");
        }
    }

    /// <summary>
    /// A BF16 matrix with kept panels (<see cref="MatMul.PackPanels"/>, packed one panel per call as a load does) goes
    /// through the prompt tile from one token on, and every output is the stated chain of multiply-adds: a token's sums
    /// are the same bit for bit whatever the token count, alone, fused with other products or with the SwiGLU
    /// activation. Rows leave a short last panel, columns a short last K block; token counts cover the matrix-vector
    /// kernel's range (1–4), every short tile and the prefetch limit (16).
    /// </summary>
    private unsafe void KeptPanelsSumInTheStatedOrder(KernelPath path)
    {
        const int rows = 101, columns = 2100;
        var gate = new TestWeights(TensorDType.BF16, rows, columns, seed: 70);
        var up = new TestWeights(TensorDType.BF16, rows, columns, seed: 71);
        long bytes = MatMul.PanelBytes(gate.Matrix, path);
        byte* gatePanels = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        byte* upPanels = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            int panelRows = MatMul.PromptPanelRows(path);
            for (int p = 0; p < MatMul.PanelCount(gate.Matrix, path); p++)
            {
                MatMul.PackPanels(gate.Matrix, gatePanels, p, p + 1, path);
                MatMul.PackPanels(up.Matrix, upPanels, p, p + 1, path);
            }

            var keptGate = gate.Matrix.WithPanels(gatePanels, panelRows);
            var keptUp = up.Matrix.WithPanels(upPanels, panelRows);
            int seed = 72;
            foreach (int tokens in new[] { 1, 2, 3, 4, 5, 9, 16, 17, 21 })
            {
                float[] x = TestWeights.RandomVector(tokens * columns, ++seed);
                float[] expected = SumsInThePromptTilesOrder(gate.Matrix, x, tokens, path);
                float[] expectedUp = SumsInThePromptTilesOrder(up.Matrix, x, tokens, path);
                float[] actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
                MatMul.Multiply(_pool, keptGate, x, actual, tokens, path);
                actual.Should().Equal(expected, $"{path}, kept panels, {tokens} tokens: every output is the same chain of multiply-adds");
                var swapped = new float[expected.Length];
                MatMul.Multiply(_pool, gate.Matrix.WithPanels(upPanels, panelRows), x, swapped, tokens, path);
                swapped.Should().Equal(expectedUp, $"{path}, {tokens} tokens: the tile reads the kept panels, not the map");

                float[] fused0 = new float[expected.Length], fused1 = new float[expected.Length], fused2 = new float[expected.Length];
                MatMul.Multiply(_pool, x, tokens, keptGate, fused0, keptUp, fused1, keptGate, fused2, path);
                fused0.Should().Equal(expected, $"{path}, fused with other products, {tokens} tokens");
                fused1.Should().Equal(expectedUp, $"{path}, fused with other products, {tokens} tokens");
                fused2.Should().Equal(expected, $"{path}, fused with other products, {tokens} tokens");

                float[] activated = new float[expected.Length], upScratch = new float[expected.Length];
                MatMul.MultiplySwiGlu(_pool, keptGate, keptUp, x, activated, upScratch, tokens, path);
                upScratch.Should().Equal(expectedUp, $"{path}, SwiGLU's up product, {tokens} tokens");
                float[] expectedActivated = (float[])expected.Clone();
                for (int t = 0; t < tokens; t++)
                {
                    SwiGlu.Apply(expectedActivated.AsSpan(t * rows, rows), expectedUp.AsSpan(t * rows, rows));
                }

                activated.Should().Equal(expectedActivated, $"{path}, SwiGLU over kept panels, {tokens} tokens");
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(gatePanels);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(upPanels);
        }
    }

    /// <summary>
    /// y[t, r] as the prompt tile on <paramref name="path"/> sums it: one fused multiply-add chain per K block in k
    /// order, the blocks' sums added one after another.
    /// </summary>
    private static float[] SumsInThePromptTilesOrder(in WeightMatrix w, float[] x, int tokens, KernelPath path)
    {
        int kBlock = MatMul.PrefillKBlock(path);
        // Vector128.MultiplyAddEstimate (the portable path) is fused only where the CPU has a fused multiply-add.
        bool fused = path != KernelPath.Portable || System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;
        int rows = w.Rows, columns = w.Columns;
        var expected = new float[tokens * rows];
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                float y = 0;
                for (int k0 = 0; k0 < columns; k0 += kBlock)
                {
                    float block = 0;
                    for (int k = k0; k < Math.Min(columns, k0 + kBlock); k++)
                    {
                        float wk = w.At(r, k), xk = x[t * columns + k];
                        block = fused ? MathF.FusedMultiplyAdd(wk, xk, block) : wk * xk + block;
                    }

                    y = k0 == 0 ? block : y + block;
                }

                expected[t * rows + r] = y;
            }
        }

        return expected;
    }

    /// <summary>
    /// The matrix-vector kernel over 1–11 tokens (past one pass of eight) against the same kernel one token at a time,
    /// bit for bit, so a sequence's logits do not depend on how many others it is batched with: row counts that are not
    /// a multiple of the batched kernel's row group (nor of 2), column counts inside one column block, exactly one and
    /// two blocks, across two and three (the last short, with lone vectors and a scalar tail), in every weight type. On
    /// one thread and, for the token counts the engine sends to this kernel, through the pool's row split (101 rows:
    /// several work items).
    /// </summary>
    private void BatchedDecodeMatchesOneToken(KernelPath path)
    {
        const int maxTokens = 11;
        int[] columnCounts = [1, 3, 17, 64, 100, MatMul.BatchColumns - 1, MatMul.BatchColumns + 17, 2 * MatMul.BatchColumns, 2 * MatMul.BatchColumns + 117];
        int[] rowCounts = [1, 3, MatMul.BatchRows + 3, 2 * MatMul.BatchRows + 5, 101];
        int seed = 200;
        foreach (TensorDType type in PlainTypes)
        {
            foreach (int columns in columnCounts)
            {
                foreach (int rows in rowCounts)
                {
                    var weights = new TestWeights(type, rows, columns, ++seed);
                    float[] x = TestWeights.RandomVector(maxTokens * columns, ++seed);
                    var oneByOne = new float[maxTokens * rows];
                    for (int t = 0; t < maxTokens; t++)
                    {
                        MatMul.RowsOnOneThread(weights.Matrix, x.AsSpan(t * columns, columns), oneByOne.AsSpan(t * rows, rows), 1, path, matrixVector: true);
                    }

                    for (int tokens = 1; tokens <= maxTokens; tokens++)
                    {
                        float[] expected = oneByOne[..(tokens * rows)];
                        float[] actual = Enumerable.Repeat(float.NaN, tokens * rows).ToArray();
                        MatMul.RowsOnOneThread(weights.Matrix, x.AsSpan(0, tokens * columns), actual, tokens, path, matrixVector: true);
                        actual.Should().Equal(expected, $"{path} {type} [{rows}, {columns}] × {tokens} tokens on one thread sums each output as one token does");
                        if (tokens <= MatMul.BatchedMaxTokens)
                        {
                            actual = Enumerable.Repeat(float.NaN, tokens * rows).ToArray();
                            MatMul.Multiply(_pool, weights.Matrix, x.AsSpan(0, tokens * columns), actual, tokens, path);
                            actual.Should().Equal(expected, $"{path} {type} [{rows}, {columns}] × {tokens} tokens split over the pool");
                        }

                        if (tokens <= MatMul.DecodeMaxTokens(path))
                        {
                            actual = Enumerable.Repeat(float.NaN, tokens * rows).ToArray();
                            MatMul.Multiply(_pool, weights.Matrix, x.AsSpan(0, tokens * columns), actual, tokens, path, decoding: true);
                            actual.Should().Equal(expected, $"{path} {type} [{rows}, {columns}] × {tokens} decoding tokens split over the pool");
                        }
                    }
                }
            }
        }
    }

    private static void ShouldMatchScalar(WorkerPool pool, TestWeights weights, int tokens, int seed, KernelPath path, string what)
    {
        float[] x = TestWeights.RandomVector(tokens * weights.Matrix.Columns, seed);
        var expected = new float[tokens * weights.Matrix.Rows];
        MatMul.MultiplyScalar(weights.Matrix, x, expected, tokens);
        // Poisoned, so a kernel that skips an output cannot pass on a zero left behind.
        float[] actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
        MatMul.Multiply(pool, weights.Matrix, x, actual, tokens, path);
        TestWeights.ShouldMatch(actual, expected, weights.Magnitudes(x, tokens), what);
    }

    private void FusedProductsMatchScalar(KernelPath path)
    {
        int seed = 100;
        foreach (TensorDType type in PlainTypes)
        {
            foreach (int tokens in new[] { 1, 3, 5, 17 })
            {
                const int columns = 97;
                var a = new TestWeights(type, 70, columns, ++seed);
                var b = new TestWeights(type, 33, columns, ++seed);
                var c = new TestWeights(type, 5, columns, ++seed);
                float[] x = TestWeights.RandomVector(tokens * columns, ++seed);

                float[] ya = new float[tokens * 70], yb = new float[tokens * 33], yc = new float[tokens * 5];
                MatMul.Multiply(_pool, x, tokens, a.Matrix, ya, b.Matrix, yb, c.Matrix, yc, path);
                foreach ((TestWeights w, float[] y, string name) in new[] { (a, ya, "first"), (b, yb, "second"), (c, yc, "third") })
                {
                    var expected = new float[y.Length];
                    MatMul.MultiplyScalar(w.Matrix, x, expected, tokens);
                    TestWeights.ShouldMatch(y, expected, w.Magnitudes(x, tokens), $"{path} {type} fused {name} matrix, {tokens} tokens");
                }

                // silu(G·x)·(U·x) against the scalar products and the scalar activation; the activation is smooth
                // (|d silu/dg| ≤ 1.1), so the product's error stays within the inputs' tolerances scaled by |up| and |silu|.
                var gate = new TestWeights(type, 70, columns, ++seed);
                var up = new TestWeights(type, 70, columns, ++seed);
                float[] y2 = new float[tokens * 70], upScratch = new float[tokens * 70];
                MatMul.MultiplySwiGlu(_pool, gate.Matrix, up.Matrix, x, y2, upScratch, tokens, path);
                float[] g = new float[tokens * 70], u = new float[tokens * 70];
                MatMul.MultiplyScalar(gate.Matrix, x, g, tokens);
                MatMul.MultiplyScalar(up.Matrix, x, u, tokens);
                float[] gateMagnitude = gate.Magnitudes(x, tokens), upMagnitude = up.Magnitudes(x, tokens);
                var combined = new float[g.Length];
                for (int i = 0; i < g.Length; i++)
                {
                    combined[i] = 1.1f * gateMagnitude[i] * MathF.Abs(u[i]) + upMagnitude[i] * MathF.Abs(g[i]) + 1e-6f / 1e-5f * MathF.Abs(g[i] * u[i]);
                }

                SwiGlu.ApplyScalar(g, u);
                TestWeights.ShouldMatch(y2, g, combined, $"{path} {type} gate/up with SwiGLU, {tokens} tokens");
            }
        }
    }
}
