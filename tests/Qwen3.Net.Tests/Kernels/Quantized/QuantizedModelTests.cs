using System.Numerics.Tensors;
using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Tests.Loading;
using Qwen3.Net.Tests.Model;
using Xunit.Abstractions;

namespace Qwen3.Net.Tests.Kernels.Quantized;

/// <summary>
/// The tiny model with every matrix quantized to Q8_0 (ggml's reference quantizer, written as GGUF) loads through the
/// GGUF reader and runs on the int8 kernels, close to the BF16 model's golden logits.
/// </summary>
public sealed class QuantizedModelTests(TinyModel folder, ITestOutputHelper output) : IClassFixture<TinyModel>
{
    // Measured here (AVX-512): the largest last-position logit difference per golden case was 0.36, 0.78, 0.77 and
    // 0.62, on logits spread ±16 with a standard deviation of 3.3, and the top token agreed in every case. The bound
    // is twice the worst, under half a standard deviation.
    private const float Tolerance = 1.5f;

    [Fact]
    public void A_Q8_0_gguf_of_the_tiny_model_stays_close_to_the_bf16_goldens()
    {
        using var temp = new TempFolder();
        string path = temp.File("tiny-qwen3-q8_0.gguf");
        using (TensorStore store = TensorStore.Open(Fixtures.TinyModelFolder))
        {
            Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, path, "tiny-qwen3", edit: gguf =>
            {
                foreach (string name in store.TensorNames)
                {
                    TensorView view = store.Get(name);
                    if (view.Shape.Length != 2)
                    {
                        continue;
                    }

                    byte[] blocks = QuantizeRows(WeightMatrix.From(view));
                    string ggufName = GgufTensorNames.ToGguf(name);
                    gguf.RemoveTensor(ggufName).Should().BeTrue(ggufName);
                    gguf.AddTensor(ggufName, [view.Shape[1], view.Shape[0]], GgmlType.Q8_0, blocks.Length, stream => stream.Write(blocks));
                }
            });
        }

        using var model = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 2 });
        int vocab = model.Config.VocabSize;
        float worst = 0;
        foreach (GoldenCase golden in folder.Cases.Values)
        {
            float[] stored = TinyModel.ReadFloats(golden.LogitsFile);
            int lastRow = Array.IndexOf(golden.LogitPositions, golden.PromptIds.Length - 1);
            lastRow.Should().BeGreaterThanOrEqualTo(0);
            using var context = model.CreateContext();
            float[] logits = context.Evaluate(golden.PromptIds).ToArray();
            float[] expected = stored.AsSpan(lastRow * vocab, vocab).ToArray();
            float diff = 0;
            for (int i = 0; i < vocab; i++)
            {
                diff = Math.Max(diff, Math.Abs(logits[i] - expected[i]));
            }

            output.WriteLine($"{golden.Name}: max |logit − BF16 golden| = {diff:G4}, top-1 {TensorPrimitives.IndexOfMax(logits)} vs {TensorPrimitives.IndexOfMax(expected)}");
            diff.Should().BeLessThan(Tolerance, golden.Name);
            TensorPrimitives.IndexOfMax(logits).Should().Be(TensorPrimitives.IndexOfMax(expected), $"{golden.Name}: the top token survives Q8_0");
            worst = Math.Max(worst, diff);

            // Decoding continues on the quantized weights (one token at a time through the matrix-vector kernels).
            float[] next = context.Evaluate([TensorPrimitives.IndexOfMax(logits)]).ToArray();
            next.Should().OnlyContain(v => float.IsFinite(v));
        }

        worst.Should().BeGreaterThan(0, "the weights really were quantized");
    }

    private static byte[] QuantizeRows(in WeightMatrix matrix)
    {
        int rowBytes = (int)GgmlTypes.RowBytes(GgmlType.Q8_0, matrix.Columns);
        var blocks = new byte[matrix.Rows * rowBytes];
        var row = new float[matrix.Columns];
        for (int r = 0; r < matrix.Rows; r++)
        {
            matrix.ReadRow(r, row);
            QuantizedReference.QuantizeQ8_0(row, blocks.AsSpan(r * rowBytes, rowBytes));
        }

        return blocks;
    }
}
